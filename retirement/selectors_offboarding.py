"""Reads for offboarding records: how far each item got, restricted by ``core.authz``.

An item's state is derived from what it links to (the retirement request or the app data wipe),
so the record never disagrees with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from apps.choices import WipeStatus
from mdm_portal.core import authz

from .choices import OPEN_STATUSES, OffboardingState, OffboardingStep, RetirementStatus
from .models import Offboarding, OffboardingItem

DONE, IN_PROGRESS, ATTENTION = OffboardingState.DONE, OffboardingState.IN_PROGRESS, OffboardingState.ATTENTION
STATE_LABELS = dict(OffboardingState.choices)
OPEN_WIPES = (WipeStatus.PENDING, WipeStatus.SENT)
# A request that ended without removing the company data, or is stuck offline: IT decides.
ATTENTION_REQUESTS = (RetirementStatus.FAILED, RetirementStatus.CANCELLED, RetirementStatus.TIMED_OUT)

_attention_q = (
    Q(items__step=OffboardingStep.SKIPPED)
    | Q(items__retirement_request__status__in=ATTENTION_REQUESTS)
    | Q(items__app_data_wipe__status=WipeStatus.CANCELLED)
)
_open_q = Q(items__retirement_request__status__in=OPEN_STATUSES) | Q(items__app_data_wipe__status__in=OPEN_WIPES)


@dataclass(frozen=True)
class ItemState:
    state: str
    text: str

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]


def item_state(item: OffboardingItem) -> ItemState:
    """Where one item stands, in words (needs ``retirement_request`` and ``app_data_wipe`` loaded)."""
    if item.step == OffboardingStep.SKIPPED:
        return ItemState(ATTENTION, item.note)
    if item.step == OffboardingStep.REASSIGN:
        return ItemState(DONE, item.note)
    if item.step == OffboardingStep.APP_DATA_WIPE:
        wipe = item.app_data_wipe
        if wipe is None:
            return ItemState(ATTENTION, "The wipe record was removed.")
        state = IN_PROGRESS if wipe.status in OPEN_WIPES else ATTENTION if wipe.status == WipeStatus.CANCELLED else DONE
        return ItemState(state, wipe.get_status_display())
    request = item.retirement_request
    if request is None:
        return ItemState(ATTENTION, "The retirement request was removed.")
    if request.status in ATTENTION_REQUESTS:
        return ItemState(ATTENTION, request.get_status_display())
    if request.status in OPEN_STATUSES:
        return ItemState(IN_PROGRESS, request.get_status_display())
    return ItemState(DONE, request.get_status_display())


def offboardings_for(user) -> QuerySet[Offboarding]:
    """The offboardings the viewer may see, with item counts for their progress (one query)."""
    return authz.restrict(Offboarding.objects.all(), user, "retirement.view_offboarding").annotate(
        item_count=Count("items", distinct=True),
        open_count=Count("items", filter=_open_q, distinct=True),
        attention_count=Count("items", filter=_attention_q, distinct=True),
    )


def offboarding_state(offboarding: Offboarding) -> str:
    """Overall state of an offboarding annotated by ``offboardings_for``."""
    if offboarding.attention_count:
        return ATTENTION
    if offboarding.open_count:
        return IN_PROGRESS
    return DONE


def offboarding_items(offboarding: Offboarding) -> list[tuple[OffboardingItem, ItemState]]:
    items = offboarding.items.select_related("device", "retirement_request", "app_data_wipe")
    return [(item, item_state(item)) for item in items]
