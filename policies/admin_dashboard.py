"""The compliance dashboard in the IT console, with its drill-down lists and CSV exports.

Pages (all under ``/admin/policies/compliance/``, for staff who may view devices somewhere; every
number counts only the devices of their scopes):

* ``policies_compliance_dashboard``: devices per compliance state (cards, and a table per
  platform), the 60-day trend, the failing settings, devices without a policy and, for people who
  may see profile deliveries, deliveries per profile. Charts are inline SVG worked out on the
  server (``policies.dashboard_charts``; no script, no CDN), each with a title, a description and
  its numbers as a table.
* ``policies_compliance_failing_rule``: the devices failing one rule, with expected and actual.
* ``policies_compliance_without_policy``: the devices no compliance policy targets.
* ``policies_compliance_export``: any report as CSV (``policies.reports_csv``), streamed.

The pages are mounted on the admin site by ``mount`` (run when this module is imported by the
policies admin package): their URLs go before the site's own, and the dashboard is listed first in
the "Configuration and compliance" section of the index and the side navigation.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.formats import date_format

from devices.choices import LifecycleState, Platform
from mdm_portal.core import authz

from .choices import ComplianceRule, DeliveryState
from .dashboard_charts import STATE_STYLE, failing_chart, trend_chart
from .reports_csv import TABLES, csv_response
from .selectors import reports

VIEW_DEVICE = reports.VIEW_DEVICE
VIEW_DELIVERY = reports.VIEW_DELIVERY
PAGE_SIZE = 50
PREVIEW = 8


def _url(name: str, *args: Any, query: dict[str, Any] | None = None) -> str | None:
    """An admin URL, or None when that page is not in the console (its ModelAdmin is not registered)."""
    try:
        url = reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode(query)}" if query else url


def device_list_url(**filters: str) -> str | None:
    """The console's device list of enrolled devices, filtered (``compliance_state="noncompliant"``)."""
    query = {"lifecycle_state__exact": LifecycleState.ENROLLED}
    query |= {f"{name}__exact": value for name, value in filters.items()}
    return _url("devices_device_changelist", query=query)


def export_url(report: str, **params: str) -> str:
    return _url("policies_compliance_export", report, query=params or None) or ""


# Pages ---------------------------------------------------------------------------------------------------


def _require(request, permission: str) -> None:
    if not authz.has_any(request.user, permission):
        raise PermissionDenied


def _rule_or_404(rule: str) -> str:
    if rule not in ComplianceRule.values:
        raise Http404("There is no such compliance rule.")
    return rule


class ComplianceDashboard:
    """The dashboard's views, bound to one admin site."""

    def __init__(self, site: AdminSite):
        self.site = site

    def get_urls(self) -> list:
        wrap = self.site.admin_view
        return [
            path("policies/compliance/", wrap(self.dashboard_view), name="policies_compliance_dashboard"),
            path(
                "policies/compliance/failing/<str:rule>/",
                wrap(self.failing_rule_view),
                name="policies_compliance_failing_rule",
            ),
            path(
                "policies/compliance/without-policy/",
                wrap(self.without_policy_view),
                name="policies_compliance_without_policy",
            ),
            path(
                "policies/compliance/export/<slug:report>.csv",
                wrap(self.export_view),
                name="policies_compliance_export",
            ),
        ]

    def context(self, request, title: str, **extra: Any) -> dict[str, Any]:
        app_url = _url("app_list", "policies") or _url("policies_compliance_dashboard")
        return {
            **self.site.each_context(request),
            "title": title,
            "app_label": "policies",
            "app_name": apps.get_app_config("policies").verbose_name,
            "app_url": app_url,
            "dashboard_url": _url("policies_compliance_dashboard"),
            **extra,
        }

    # The dashboard ------------------------------------------------------------------------------------

    def dashboard_view(self, request):
        _require(request, VIEW_DEVICE)
        user = request.user
        summary = reports.compliance_summary(user=user)
        cards = [
            {
                "state": state,
                "label": reports.state_label(state),
                "count": summary.counts[state],
                "color": STATE_STYLE[state][0],
                "url": device_list_url(compliance_state=state),
            }
            for state in reports.STATES
        ]
        platform_rows = [
            {
                "label": p.label,
                "url": device_list_url(platform=p.platform),
                "total": p.total,
                "cells": [
                    (p.counts[s], device_list_url(platform=p.platform, compliance_state=s)) for s in reports.STATES
                ],
            }
            for p in summary.platforms
        ]
        days = reports.compliance_trend(user=user)
        settings = reports.failing_settings(user=user)
        setting_rows = [
            {
                "setting": s,
                "url": _url("policies_compliance_failing_rule", s.rule),
                "cannot_evaluate_url": _url("policies_compliance_failing_rule", s.rule, query={"cannot_evaluate": 1}),
            }
            for s in settings
        ]
        without = reports.devices_without_policy(user=user)
        without_count = without.count()
        preview = [
            {"device": d, "url": _url("devices_device_change", d.pk)}
            for d in (without[:PREVIEW] if without_count else [])
        ]
        deliveries = None
        if authz.has_any(user, VIEW_DELIVERY):
            deliveries = [
                {
                    "name": p.name,
                    "url": _url("policies_configurationprofile_change", p.profile_id),
                    "total": p.total,
                    "cells": [
                        (
                            p.counts[s],
                            _url(
                                "policies_profiledelivery_changelist",
                                query={"profile__id__exact": p.profile_id, "state__exact": s},
                            ),
                        )
                        for s in DeliveryState.values
                    ],
                }
                for p in reports.profile_delivery_counts(user=user)
            ]
        context = self.context(
            request,
            "Compliance dashboard",
            generated_at=timezone.now(),
            total=summary.total,
            total_url=device_list_url(),
            cards=cards,
            states=[(s, reports.state_label(s), STATE_STYLE[s][0]) for s in reports.STATES],
            platform_rows=platform_rows,
            trend=trend_chart(days),
            trend_rows=[
                (d.day, [d.counts[s] for s in reports.STATES] if d.counts is not None else None, d.total)
                for d in reversed(days)
            ],
            failing=failing_chart(settings, lambda rule: _url("policies_compliance_failing_rule", rule)),
            setting_rows=setting_rows,
            without_count=without_count,
            without_preview=preview,
            without_url=_url("policies_compliance_without_policy"),
            deliveries=deliveries,
            delivery_states=DeliveryState.choices,
            exports={
                "summary": export_url("summary"),
                "trend": export_url("trend"),
                "failing_settings": export_url("failing-settings"),
                "without_policy": export_url("devices-without-policy"),
                "deliveries": export_url("profile-deliveries"),
            },
        )
        return TemplateResponse(request, "admin/policies/dashboard.html", context)

    # Drill-down lists ---------------------------------------------------------------------------------

    def _list_page(self, request, *, title: str, intro: str, columns: list[str], queryset, row, csv_url: str):
        page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        context = self.context(
            request,
            title,
            intro=intro,
            columns=columns,
            rows=[row(obj) for obj in page.object_list],
            page=page,
            page_query=query.urlencode(),
            csv_url=csv_url,
        )
        return TemplateResponse(request, "admin/policies/dashboard_devices.html", context)

    def failing_rule_view(self, request, rule: str):
        _require(request, VIEW_DEVICE)
        rule = _rule_or_404(rule)
        cannot_evaluate = request.GET.get("cannot_evaluate") in ("1", "true", "yes")
        label = reports.rule_label(rule)
        failures = reports.failing_rule_list(user=request.user, rule=rule, cannot_evaluate=cannot_evaluate)

        def row(failure) -> list[tuple[Any, str | None]]:
            device = failure.device
            return [
                *_device_cells(device),
                (failure.policy.name if failure.policy_id else "Organisation-wide setting", None),
                (failure.expected or "-", None),
                (failure.actual or "-", None),
                (date_format(timezone.localtime(failure.since), "j M Y, H:i"), None),
            ]

        if cannot_evaluate:
            title = f"Could not check: {label}"
            intro = "Devices that did not report what this setting needs, so it could not be checked."
        else:
            title = f"Failing: {label}"
            intro = "Devices that fail this setting, with what their policy expects and what they reported."
        return self._list_page(
            request,
            title=title,
            intro=intro,
            columns=[*DEVICE_COLUMNS, "Policy", "Expected", "Reported", "Failing since"],
            queryset=failures,
            row=row,
            csv_url=export_url("failing-rule", rule=rule, **({"cannot_evaluate": "1"} if cannot_evaluate else {})),
        )

    def without_policy_view(self, request):
        _require(request, VIEW_DEVICE)

        def row(device) -> list[tuple[Any, str | None]]:
            checkin = device.last_checkin_at
            return [
                *_device_cells(device),
                (device.get_ownership_display(), None),
                (date_format(timezone.localtime(checkin), "j M Y, H:i") if checkin else "Never", None),
            ]

        return self._list_page(
            request,
            title="Devices without a compliance policy",
            intro="Enrolled devices that no compliance policy targets. Assign a policy to a group they are in.",
            columns=[*DEVICE_COLUMNS, "Ownership", "Last check-in"],
            queryset=reports.devices_without_policy(user=request.user),
            row=row,
            csv_url=export_url("devices-without-policy"),
        )

    # CSV ------------------------------------------------------------------------------------------------

    def export_view(self, request, report: str):
        table = TABLES.get(report)
        if table is None:
            raise Http404("There is no such report.")
        _require(request, VIEW_DELIVERY if report == "profile-deliveries" else VIEW_DEVICE)
        params = {}
        if report == "failing-rule":
            params = {
                "rule": _rule_or_404(request.GET.get("rule", "")),
                "cannot_evaluate": request.GET.get("cannot_evaluate") in ("1", "true", "yes"),
            }
        return csv_response(table(user=request.user, **params))

    # The index ------------------------------------------------------------------------------------------

    def add_to_app_list(self, request, app_list: list[dict], app_label: str | None) -> list[dict]:
        """The dashboard first in the policies section (the section made if the person sees no model of it)."""
        if app_label not in (None, "policies") or not authz.has_any(request.user, VIEW_DEVICE):
            return app_list
        url = _url("policies_compliance_dashboard")
        entry = {
            "model": None,
            "name": "Compliance dashboard",
            "object_name": "ComplianceDashboard",
            "perms": {"add": False, "change": False, "delete": False, "view": True},
            "admin_url": url,
            "add_url": None,
            "view_only": True,
        }
        section = next((app for app in app_list if app["app_label"] == "policies"), None)
        if section is None:
            section = {
                "name": apps.get_app_config("policies").verbose_name,
                "app_label": "policies",
                "app_url": _url("app_list", "policies") or url,
                "has_module_perms": True,
                "models": [],
            }
            app_list = sorted([*app_list, section], key=lambda app: app["name"].lower())
        section["models"].insert(0, entry)
        return app_list


DEVICE_COLUMNS = ["Device", "Platform", "OS version", "Scope", "User", "Compliance"]
PLATFORM_LABELS = dict(Platform.choices)


def _device_cells(device) -> list[tuple[Any, str | None]]:
    return [
        (device.name, _url("devices_device_change", device.pk)),
        (PLATFORM_LABELS.get(device.platform, device.platform), None),
        (device.os_version or "-", None),
        (device.scope.name if device.scope_id else "-", None),
        (device.primary_user.username if device.primary_user_id else "-", None),
        (reports.state_label(device.compliance_state), None),
    ]


def mount(site: AdminSite) -> ComplianceDashboard:
    """Put the dashboard's pages on ``site`` (once): URLs before the site's own, an entry in its index."""
    existing = getattr(site, "compliance_dashboard", None)
    if existing is not None:
        return existing
    dashboard = ComplianceDashboard(site)
    site.compliance_dashboard = dashboard
    site_urls, site_app_list = site.get_urls, site.get_app_list
    site.get_urls = lambda: [*dashboard.get_urls(), *site_urls()]
    site.get_app_list = lambda request, app_label=None: dashboard.add_to_app_list(
        request, site_app_list(request, app_label), app_label
    )
    return dashboard


mount(admin.site)
