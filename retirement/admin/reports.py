"""The retirement report in the IT console, with its CSV exports.

Pages (under ``/admin/retirement/report/``, for staff who may view retirement requests somewhere;
every number counts only what the viewer may see, through ``retirement.selectors``):

* ``retirement_report``: requests by status and by source (last 30 and 90 days, all time), the
  overdue requests (open longer than the settings' offline timeout), the stale devices (enrolled,
  silent for 30, 60, 90, 180 days or more, per platform, linked to the filtered device list; for
  people who may view devices), and the last unenrolments with their proof of removal.
* ``retirement_report_overdue_csv`` and ``retirement_report_stale_csv``: the two lists as CSV
  (``policies.reports_csv``: streamed, formula-guarded).

Every section is a fixed number of aggregate queries, whatever the fleet's size. The pages are
mounted on the admin site by ``mount`` like the compliance dashboard; the report is listed first in
the retirement section of the index and linked from the request list.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from devices.choices import LifecycleState
from mdm_portal.core import authz
from policies.reports_csv import Table, csv_response

from .. import selectors
from ..choices import OPEN_STATUSES, RetirementStatus
from ..models import RetirementSettings

VIEW_REQUEST = selectors.VIEW_REQUEST
VIEW_DEVICE = selectors.VIEW_DEVICE


def _require(request) -> None:
    if not authz.has_any(request.user, VIEW_REQUEST):
        raise PermissionDenied


def _age_days(when, now) -> int:
    return (now - when).days if when else 0


def stale_list_url(platform: str, cutoff=None, *, never: bool = False) -> str:
    """The device list of enrolled devices of ``platform`` silent since before ``cutoff`` (or never seen)."""
    query: dict[str, str] = {"lifecycle_state__exact": LifecycleState.ENROLLED}
    if platform:
        query["platform__exact"] = platform
    if never:
        query["last_checkin_at__isnull"] = "True"
    else:
        query["last_checkin_at__lt"] = cutoff.isoformat()
    return reverse("admin:devices_device_changelist") + "?" + urlencode(query)


def overdue_rows(*, user) -> Iterator[list[Any]]:
    now = timezone.now()
    yield [
        "device",
        "serial number",
        "platform",
        "scope",
        "action",
        "status",
        "requested at",
        "age (days)",
        "requested by",
    ]
    for r in selectors.retirement_overdue_list(user=user, now=now).iterator(chunk_size=2000):
        yield [
            r.device_name,
            r.device_serial,
            r.get_device_platform_display(),
            r.scope.name,
            r.get_action_display().split(" (")[0],
            r.get_status_display(),
            r.requested_at,
            _age_days(r.requested_at, now),
            r.requested_by_label,
        ]


def stale_rows(*, user) -> Iterator[list[Any]]:
    now = timezone.now()
    yield ["device", "serial number", "platform", "ownership", "scope", "user", "last check-in", "days silent"]
    for d in selectors.stale_device_rows(user=user, now=now):
        yield [
            d.name,
            d.serial_number,
            d.get_platform_display(),
            d.get_ownership_display(),
            d.scope.name if d.scope_id else "",
            d.primary_user.get_username() if d.primary_user_id else "",
            d.last_checkin_at or "never",
            _age_days(d.last_checkin_at, now) if d.last_checkin_at else "",
        ]


class RetirementReport:
    """The report's views, bound to one admin site."""

    def __init__(self, site: AdminSite):
        self.site = site

    def get_urls(self) -> list:
        wrap = self.site.admin_view
        return [
            path("retirement/report/", wrap(self.report_view), name="retirement_report"),
            path("retirement/report/overdue.csv", wrap(self.overdue_csv_view), name="retirement_report_overdue_csv"),
            path("retirement/report/stale.csv", wrap(self.stale_csv_view), name="retirement_report_stale_csv"),
        ]

    def report_view(self, request):
        _require(request)
        user, now = request.user, timezone.now()
        by_status = selectors.retirement_counts_by(user=user, by="status", now=now)
        overdue = selectors.retirement_overdue_list(user=user, now=now)
        overdue_rows_shown = list(overdue[: selectors.OVERDUE_SHOWN])
        overdue_count = len(overdue_rows_shown)
        if overdue_count == selectors.OVERDUE_SHOWN:
            overdue_count = overdue.count()
        changelist = reverse("admin:retirement_retirementrequest_changelist")
        stale = None
        if authz.has_any(user, VIEW_DEVICE):
            cutoffs, table = selectors.stale_device_buckets(user=user, now=now)
            stale = {
                "days": selectors.STALE_DAYS,
                "rows": [
                    {
                        **row,
                        "cells": [
                            (row[f"days_{days}"], stale_list_url(row["platform"], cutoffs[days]))
                            for days in selectors.STALE_DAYS
                        ],
                        "never_url": stale_list_url(row["platform"], never=True),
                    }
                    for row in table
                ],
            }
        context = {
            **self.site.each_context(request),
            "title": "Retirement report",
            "app_label": "retirement",
            "app_name": apps.get_app_config("retirement").verbose_name,
            "by_status": by_status,
            "by_source": selectors.retirement_counts_by(user=user, by="source", now=now),
            "pending": [row for row in by_status if row.value in OPEN_STATUSES],
            "pending_total": sum(row.all_time for row in by_status if row.value in OPEN_STATUSES),
            "timeout_days": RetirementSettings.load().offline_timeout_days,
            "overdue": [
                {
                    "request": r,
                    "action": r.get_action_display().split(" (")[0],
                    "age": _age_days(r.requested_at, now),
                    "url": reverse("admin:retirement_retirementrequest_change", args=[r.pk]),
                }
                for r in overdue_rows_shown
            ],
            "overdue_count": overdue_count,
            "overdue_more": overdue_count > len(overdue_rows_shown),
            "stale": stale,
            "recent": [
                {
                    "request": r,
                    "url": reverse("admin:retirement_retirementrequest_change", args=[r.pk]),
                    "evidence_url": reverse("admin:retirement_retirementrequest_evidence_csv", args=[r.pk]),
                    "proof_url": reverse("admin:retirement_retirementrequest_proof", args=[r.pk]),
                }
                for r in selectors.retirement_recent_finished(user=user)
            ],
            "changelist_url": changelist,
            "status_url": changelist + "?status__exact=",
            "source_url": changelist + "?source__exact=",
            "timed_out": RetirementStatus.TIMED_OUT,
        }
        request.current_app = self.site.name
        return TemplateResponse(request, "admin/retirement/report.html", context)

    def overdue_csv_view(self, request):
        _require(request)
        return csv_response(Table(name="retirement-overdue", rows=overdue_rows(user=request.user)))

    def stale_csv_view(self, request):
        _require(request)
        if not authz.has_any(request.user, VIEW_DEVICE):
            raise PermissionDenied
        return csv_response(Table(name="stale-devices", rows=stale_rows(user=request.user)))

    def add_to_app_list(self, request, app_list: list[dict], app_label: str | None) -> list[dict]:
        """The report first in the retirement section of the index (which exists for anyone who may see it)."""
        if app_label not in (None, "retirement") or not authz.has_any(request.user, VIEW_REQUEST):
            return app_list
        section = next((app for app in app_list if app["app_label"] == "retirement"), None)
        if section is None:
            return app_list
        section["models"].insert(
            0,
            {
                "model": None,
                "name": "Retirement report",
                "object_name": "RetirementReport",
                "perms": {"add": False, "change": False, "delete": False, "view": True},
                "admin_url": reverse("admin:retirement_report"),
                "add_url": None,
                "view_only": True,
            },
        )
        return app_list


def mount(site: AdminSite) -> RetirementReport:
    """Put the report's pages on ``site`` (once): URLs before the site's own, an entry in its index."""
    existing = getattr(site, "retirement_report", None)
    if existing is not None:
        return existing
    report = RetirementReport(site)
    site.retirement_report = report
    site_urls, site_app_list = site.get_urls, site.get_app_list
    site.get_urls = lambda: [*report.get_urls(), *site_urls()]
    site.get_app_list = lambda request, app_label=None: report.add_to_app_list(
        request, site_app_list(request, app_label), app_label
    )
    return report


mount(admin.site)
