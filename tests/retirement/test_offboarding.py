"""Offboarding: a person with personal and corporate devices and app instances leaves."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.choices import WipeStatus
from apps.models import AppDataWipe, ManagedAppInstance
from devices.choices import CommandType, LifecycleState, Ownership, Platform
from devices.models import Device, DeviceCommand
from mdm_portal.core import services as core_services
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent
from retirement.choices import CorporateOffboarding, OffboardingSource, OffboardingStep, RetirementStatus
from retirement.models import Offboarding, RetirementRequest
from retirement.selectors_offboarding import ATTENTION, DONE, IN_PROGRESS, offboarding_items, offboardings_for
from retirement.services import offboarding_run, offboarding_start
from tests.factories import SYSTEM, DeviceFactory, ScopeFactory, StaffFactory, UserFactory, grant

from .conftest import give_managed_set

pytestmark = pytest.mark.django_db


def app_instance(user, device=None, app="com.microsoft.Office.Outlook"):
    return ManagedAppInstance.objects.create(
        user=user,
        app_identifier=app,
        platform=Platform.IOS,
        device=device,
        device_name=device.name if device else "Emma's own iPad",
        secret_hash=f"hash-{ManagedAppInstance.objects.count()}",
    )


@pytest.fixture
def leaver(db):
    """Emma: a personal iPhone, a corporate Windows laptop, a corporate Linux box, a pending record, app data."""
    scope = ScopeFactory()
    emma = UserFactory(username="emma", first_name="Emma", last_name="Stone", scope=scope)
    phone = DeviceFactory(name="Emma's iPhone", primary_user=emma, scope=scope, ownership=Ownership.PERSONAL)
    give_managed_set(phone)
    laptop = DeviceFactory(
        name="LAPTOP-EMMA", primary_user=emma, scope=scope, platform=Platform.WINDOWS, os_version="10.0.22631"
    )
    linux = DeviceFactory(name="build-box", primary_user=emma, scope=scope, platform=Platform.LINUX, os_version="24.04")
    pending = DeviceFactory(name="NEW-TABLET", primary_user=emma, scope=scope, state=LifecycleState.PENDING)
    gone = DeviceFactory(name="OLD-PHONE", primary_user=emma, scope=scope, state=LifecycleState.RETIRED)
    outlook = app_instance(emma, phone)
    teams = app_instance(emma, None, "com.microsoft.skype.teams")
    return emma, {"phone": phone, "laptop": laptop, "linux": linux, "pending": pending, "gone": gone}, [outlook, teams]


@pytest.fixture
def global_admin(db):
    admin = StaffFactory(username="it-admin")
    grant(admin, "Global administrator")
    return admin


def steps_by_label(offboarding):
    return {item.label: item.step for item in offboarding.items.all()}


def test_offboarding_wipes_corporate_devices_when_the_setting_says_wipe(leaver, global_admin, retirement_settings):
    retirement_settings.corporate_offboarding = CorporateOffboarding.WIPE
    retirement_settings.require_approval = True  # offboarding follows policy; it never waits for approval
    retirement_settings.save()
    emma, devices, (outlook, teams) = leaver

    offboarding = offboarding_start(
        actor=Actor.for_user(global_admin), user=emma, source=OffboardingSource.ADMIN, reason="Left on 30 Nov"
    )

    emma.refresh_from_db()
    assert emma.is_active is False
    assert steps_by_label(offboarding) == {
        "Emma's iPhone": OffboardingStep.RETIRE,
        "LAPTOP-EMMA": OffboardingStep.WIPE,
        "build-box": OffboardingStep.RETIRE,  # no full wipe on Linux: retired instead
        "NEW-TABLET": OffboardingStep.REASSIGN,
        "com.microsoft.Office.Outlook on Emma's iPhone": OffboardingStep.APP_DATA_WIPE,
        "com.microsoft.skype.teams on Emma's own iPad": OffboardingStep.APP_DATA_WIPE,
    }
    assert "full wipe is not available on Linux" in offboarding.items.get(label="build-box").note
    requests = {r.device_name: r for r in RetirementRequest.objects.filter(source="offboarding")}
    assert {name: (r.action, r.status) for name, r in requests.items()} == {
        "Emma's iPhone": ("retire", RetirementStatus.COMMAND_SENT),
        "LAPTOP-EMMA": ("wipe", RetirementStatus.COMMAND_SENT),
        "build-box": ("retire", RetirementStatus.COMMAND_SENT),
    }
    assert DeviceCommand.objects.filter(device=devices["laptop"], command_type=CommandType.WIPE).exists()
    retire_payload = DeviceCommand.objects.get(device=devices["phone"], command_type=CommandType.RETIRE).payload
    assert "com.microsoft.Office.Outlook" in str(retire_payload)
    assert all(r.reason == "Offboarding of emma. Left on 30 Nov" for r in requests.values())
    devices["pending"].refresh_from_db()
    assert devices["pending"].primary_user is None
    assert set(AppDataWipe.objects.values_list("instance_id", "status")) == {
        (outlook.pk, WipeStatus.PENDING),
        (teams.pk, WipeStatus.PENDING),
    }
    assert offboarding.user_label == "Emma Stone <emma@example.com>"
    assert offboarding.corporate_action == CorporateOffboarding.WIPE
    verbs = list(
        AuditEvent.objects.filter(verb__in=["user.deactivate", "retirement.offboarding"]).values_list(
            "verb", "actor_label"
        )
    )
    assert sorted(verbs) == [
        ("retirement.offboarding", global_admin.username),
        ("user.deactivate", global_admin.username),
    ]


def test_offboarding_reassigns_corporate_devices_to_it_by_default(leaver, global_admin, retirement_settings):
    emma, devices, _ = leaver
    offboarding = offboarding_start(actor=Actor.for_user(global_admin), user=emma, source=OffboardingSource.API)

    assert steps_by_label(offboarding)["LAPTOP-EMMA"] == OffboardingStep.REASSIGN
    assert steps_by_label(offboarding)["build-box"] == OffboardingStep.REASSIGN
    laptop = Device.objects.get(pk=devices["laptop"].pk)
    assert (laptop.primary_user, laptop.lifecycle_state) == (None, LifecycleState.ENROLLED)
    assert not RetirementRequest.objects.filter(device=laptop).exists()
    assert RetirementRequest.objects.get(device=devices["phone"]).action == "retire"


def test_a_device_already_being_retired_is_linked_not_asked_twice(leaver, global_admin):
    from retirement.services import retirement_request

    emma, devices, _ = leaver
    existing = retirement_request(
        actor=Actor.for_user(global_admin), device=devices["phone"], action="retire", source="admin"
    )
    offboarding = offboarding_start(actor=Actor.for_user(global_admin), user=emma, source=OffboardingSource.ADMIN)

    item = offboarding.items.exclude(step=OffboardingStep.APP_DATA_WIPE).get(device=devices["phone"])
    assert (item.step, item.retirement_request) == (OffboardingStep.EXISTING, existing)
    assert RetirementRequest.objects.filter(device=devices["phone"]).count() == 1


def test_progress_follows_the_requests_and_wipes(leaver, global_admin):
    from apps.services.mam import app_wipe_confirm
    from retirement.services import retirement_force

    emma, devices, (outlook, teams) = leaver
    offboarding = offboarding_start(actor=Actor.for_user(global_admin), user=emma, source=OffboardingSource.ADMIN)

    def overall():
        return offboardings_for(global_admin).get(pk=offboarding.pk)

    assert (overall().item_count, overall().open_count, overall().attention_count) == (6, 3, 0)
    states = {item.label: state.state for item, state in offboarding_items(offboarding)}
    assert states["Emma's iPhone"] == IN_PROGRESS and states["NEW-TABLET"] == DONE

    for instance in (outlook, teams):
        wipe = instance.wipes.get()
        AppDataWipe.objects.filter(pk=wipe.pk).update(status=WipeStatus.SENT)
        app_wipe_confirm(instance=instance, wipe_uuid=wipe.uuid)
    request = RetirementRequest.objects.get(device=devices["phone"])
    retirement_force(actor=Actor.for_user(global_admin), request=request, reason="Phone lost with the leaver")

    assert (overall().open_count, overall().attention_count) == (0, 0)
    states = {item.label: state for item, state in offboarding_items(offboarding)}
    assert all(s.state == DONE for s in states.values()), states


def test_a_device_that_cannot_be_handled_is_named_and_needs_attention(leaver, global_admin):
    emma, _devices, _ = leaver
    # Retiring, but no open request (e.g. marked by hand): offboarding cannot link or ask anything.
    stuck = DeviceFactory(name="STUCK-PAD", primary_user=emma, scope=emma.scope, state=LifecycleState.RETIRING)

    offboarding = offboarding_start(actor=Actor.for_user(global_admin), user=emma, source=OffboardingSource.ADMIN)

    item = offboarding.items.get(device=stuck)
    assert item.step == OffboardingStep.SKIPPED
    assert "without an open request" in item.note
    assert offboardings_for(global_admin).get(pk=offboarding.pk).attention_count == 1
    assert dict((i.label, s.state) for i, s in offboarding_items(offboarding))["STUCK-PAD"] == ATTENTION


def test_only_people_with_the_permission_offboard_and_never_themselves(leaver, global_admin):
    emma, _devices, _ = leaver
    helpdesk = StaffFactory(username="helpdesk", scope=emma.scope)
    grant(helpdesk, "Helpdesk operator", [emma.scope])

    with pytest.raises(PermissionDenied, match="permission to offboard emma"):
        offboarding_start(actor=Actor.for_user(helpdesk), user=emma, source=OffboardingSource.ADMIN)
    with pytest.raises(PermissionDenied, match="cannot offboard yourself"):
        offboarding_start(actor=Actor.for_user(global_admin), user=global_admin, source=OffboardingSource.ADMIN)
    emma.refresh_from_db()
    assert emma.is_active is True
    assert not Offboarding.objects.exists() and not RetirementRequest.objects.exists()


def test_deactivating_an_account_offboards_it_and_a_refusal_undoes_the_deactivation(leaver):
    emma, _devices, _ = leaver
    # A directory sync deactivates the account as the system: offboarding follows.
    core_services.user_deactivate(actor=SYSTEM, user=emma, source=OffboardingSource.DIRECTORY)
    offboarding = Offboarding.objects.get(user=emma)
    assert offboarding.source == OffboardingSource.DIRECTORY and offboarding.started_by is None
    assert offboarding.items.count() == 6

    other = UserFactory(username="zoe")
    DeviceFactory(primary_user=other, ownership=Ownership.PERSONAL)
    operator = StaffFactory(username="operator")
    grant(operator, "Helpdesk operator")  # may edit nobody's offboarding
    with pytest.raises(PermissionDenied):
        core_services.user_deactivate(actor=Actor.for_user(operator), user=other, source=OffboardingSource.ADMIN)
    other.refresh_from_db()
    assert other.is_active is True and not Offboarding.objects.filter(user=other).exists()


def test_an_inactive_account_can_be_offboarded_again_for_devices_enrolled_since(leaver, global_admin):
    emma, _devices, _ = leaver
    offboarding_start(actor=Actor.for_user(global_admin), user=emma, source=OffboardingSource.ADMIN)
    late = DeviceFactory(name="LATE-PHONE", primary_user=emma, scope=emma.scope, ownership=Ownership.PERSONAL)

    second = offboarding_start(actor=Actor.for_user(global_admin), user=emma, source=OffboardingSource.ADMIN)

    assert steps_by_label(second)["LATE-PHONE"] == OffboardingStep.RETIRE
    assert steps_by_label(second)["Emma's iPhone"] == OffboardingStep.EXISTING
    assert RetirementRequest.objects.filter(device=late).count() == 1
    with pytest.raises(ValidationError, match="already deactivated"):
        core_services.user_deactivate(actor=Actor.for_user(global_admin), user=emma, source="admin")


def test_offboarding_run_rejects_an_unknown_source(leaver):
    with pytest.raises(ValidationError, match="Unknown offboarding source"):
        offboarding_run(actor=SYSTEM, user=leaver[0], source="fax")
