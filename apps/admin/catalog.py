"""The app catalog in the IT console: the list with install counts, the editor per kind with the
assignments editor, the versions page (upload and supersedence), the install status page with its
chart, and "Retry failed"."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.db.models.functions import Lower
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from mdm_portal.core import authz
from mdm_portal.core.models import Scope
from policies.admin.editor import EditorAdmin, proposed_copy

from ..choices import AppKind, InstallState
from ..models import App, AppInstall, AppVersion
from ..selectors import STATE_ORDER, VIEW_INSTALL, catalog_counts, install_counts
from ..services.delivery import app_version_key
from .assignments import app_assignment_formset, app_assignments_preview
from .charts import STATE_COLOR, install_chart
from .filters import scoped_filter
from .forms import KIND_HELP, AppForm, VersionForm

RETRY = "apps.retry_app"
CHANGE = "apps.change_app"


def retry_allowed(user) -> bool:
    return authz.has_any(user, RETRY)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def supersedence(app: App, user) -> list[tuple[str, int]]:
    """``[(older version, devices that have it)]``: the devices the current version will update."""
    if app.current_version_id is None:
        return []
    current = app.current_version.version
    installs = authz.restrict(AppInstall.objects.filter(app=app), user, VIEW_INSTALL)
    rows = (
        installs.filter(state=InstallState.INSTALLED)
        .exclude(installed_version__in=["", current])
        .order_by()
        .values("installed_version")
        .annotate(n=Count("pk"))
    )
    current_key = app_version_key(current)
    older = [(r["installed_version"], r["n"]) for r in rows if app_version_key(r["installed_version"]) < current_key]
    return sorted(older, key=lambda item: app_version_key(item[0]))


def supersedence_sentence(app: App, older: list[tuple[str, int]]) -> str:
    if app.current_version_id is None or not older:
        return ""
    current = app.current_version.version
    parts = " and ".join(f"{version} ({_plural(n, 'device')})" for version, n in older)
    return f"Devices with {parts} will be updated to {current} at their next check-in."


@admin.register(App)
class AppAdmin(EditorAdmin):
    editor_template = "admin/apps/editor.html"
    change_list_template = "admin/apps/change_list.html"
    # One App per platform (an identifier, versions and packages are per platform): the rows of one app
    # are kept together, sorted by name whatever its case ("qBittorrent" among the q's, not after "Zoom").
    list_display = ["name_label", "platform", "kind", "current_version_label", "scope_label", "installs"]
    list_display_links = ["name_label"]
    ordering = [Lower("name"), "platform", "pk"]
    list_filter = ["platform", "kind", ("scope", scoped_filter("Organisation-wide"))]
    list_select_related = ["scope", "current_version"]
    search_fields = ["name", "publisher", "identifier", "description"]
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="Name", ordering=Lower("name"))
    def name_label(self, obj):
        # The same app on another platform, right under the previous row: its name is shown quieter.
        if getattr(obj, "same_name_as_previous", False):
            return format_html('<span class="same-app">{}</span>', obj.name)
        return obj.name

    @admin.display(description="Current version", ordering="current_version__version_key")
    def current_version_label(self, obj):
        if obj.kind == AppKind.WEB:
            return "Web link"
        return obj.current_version.version if obj.current_version_id else "-"

    @admin.display(description="Scope", ordering="scope__name")
    def scope_label(self, obj):
        return obj.scope or "Organisation-wide"

    @admin.display(description="Installs")
    def installs(self, obj):
        counts = getattr(obj, "install_counts", None)
        if counts is None:
            return "-"
        blocked = getattr(obj, "blocked_counts", None) or {}
        if not counts and not blocked:
            return "None yet"
        url = reverse("admin:apps_app_installs", args=[obj.pk])
        parts = []
        if blocked:
            parts.append(blocked_summary(blocked, url))
        if counts:
            parts.append(
                format_html_join(
                    " ",
                    '<a class="delivery-state install-state state-{}" href="{}?state={}">{} {}</a>',
                    (
                        (state, url, state, counts[state], InstallState(state).label.lower())
                        for state in STATE_ORDER
                        if counts.get(state)
                    ),
                )
            )
        return format_html_join(mark_safe("<br>"), "{}", ((part,) for part in parts))

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        cl = (getattr(response, "context_data", None) or {}).get("cl")
        if cl is not None:
            rows = list(cl.result_list)
            counts, blocked = catalog_counts([row.pk for row in rows], request.user)
            previous = None
            for row in rows:
                row.install_counts = counts.get(row.pk, {})
                row.blocked_counts = blocked.get(row.pk, {})
                row.same_name_as_previous = previous is not None and previous.casefold() == row.name.casefold()
                previous = row.name
        return response

    # The editor ----------------------------------------------------------------------------------

    def _kind(self, request, obj) -> str | None:
        if obj is not None:
            return obj.kind
        kind = request.GET.get("kind") or request.POST.get("kind")
        return kind if kind in AppKind.values else None

    def editor_add_prelude(self, request):
        if self._kind(request, None) is not None:
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add app: choose what kind",
            "kinds": [(kind, AppKind(kind).label, KIND_HELP[kind]) for kind in AppKind.values],
            "add_url": reverse("admin:apps_app_add"),
        }
        return TemplateResponse(request, "admin/apps/app/choose_kind.html", context)

    def _scopes(self, request, obj=None, *, disabled=False):
        scopes = authz.scopes_for(request.user, CHANGE) | authz.scopes_for(request.user, "apps.add_app")
        if disabled and obj is not None and obj.scope_id is not None:
            scopes = scopes | Scope.objects.filter(pk=obj.scope_id)
        return scopes

    def editor_form(self, request, obj, data, *, disabled):
        kind = self._kind(request, obj)
        form = AppForm(
            data,
            request.FILES if data is not None else None,
            instance=proposed_copy(obj, App, kind=kind),
            kind=kind,
            scopes=self._scopes(request, obj, disabled=disabled).order_by("name"),
            scope_required=not authz.has_global(request.user, "apps.add_app"),
            adding=obj is None,
        )
        if disabled:
            for field in form.fields.values():
                field.disabled = True
        return form

    def editor_fieldsets(self, form):
        kind = AppKind(form.kind)
        fieldsets = [(None, "", ["name", "publisher", "description", "scope", "platform"])]
        if kind == AppKind.STORE:
            fieldsets.append(("Store", "What the store and the device call the app.", ["identifier", "store_id"]))
        elif kind == AppKind.LOB:
            fieldsets.append(
                (
                    "Package",
                    "New versions are uploaded on the app's Versions page once it exists.",
                    ["identifier", "package", "version", "min_os_version"],
                )
            )
        else:
            fieldsets.append(("Web link", "", ["url"]))
        return fieldsets

    def editor_proposed(self, form, obj):
        kind = form.kind
        data = getattr(form, "cleaned_data", None) or {}
        if not form.is_bound or form.errors:
            return proposed_copy(obj, App, kind=kind)
        return proposed_copy(obj, App, kind=kind, scope=data.get("scope"), platform=data.get("platform"))

    def editor_assignments(self, request, *, data, obj, proposed_obj, disabled):
        return app_assignment_formset(request, data=data, obj=obj, proposed_obj=proposed_obj, disabled=disabled)

    def editor_preview(self, request, proposed_obj, assignments):
        return app_assignments_preview(user=request.user, app=proposed_obj, proposed=assignments.proposed())

    def editor_save(self, request, obj, form, formsets, rows):
        from ..services import app_save, app_version_add

        stored = App.objects.get(pk=obj.pk) if obj is not None else None
        actor = self.actor(request)
        with transaction.atomic():
            app = app_save(actor=actor, app=stored, data=form.app_data(), assignments=rows, user=request.user)
            package = form.cleaned_data.get("package")
            if package:
                try:
                    app_version_add(
                        actor=actor,
                        app=app,
                        version=form.cleaned_data.get("version") or None,
                        package=package,
                        min_os_version=form.cleaned_data.get("min_os_version") or "",
                        notes="",
                    )
                except ValidationError as exc:
                    if hasattr(exc, "error_dict"):
                        raise
                    raise ValidationError({"package": exc.messages}) from exc
        return app

    def editor_context(self, request, obj, form):
        context = {
            "kind": form.kind,
            "kind_label": AppKind(form.kind).label,
            "multipart": True,
            "assignments_template": "admin/apps/includes/assignments.html",
            "preview_template": "admin/apps/includes/preview.html",
        }
        if obj is None:
            return context
        counts = install_counts([obj.pk], request.user).get(obj.pk, {})
        installs_url = reverse("admin:apps_app_installs", args=[obj.pk])
        context.update(
            {
                "install_counts": [(s, InstallState(s).label, counts.get(s, 0)) for s in STATE_ORDER],
                "installs_url": installs_url,
                "versions_url": reverse("admin:apps_app_versions", args=[obj.pk]),
                "current_version": obj.current_version,
                "supersedence": supersedence_sentence(obj, supersedence(obj, request.user)),
                "retry_url": (
                    reverse("admin:apps_app_retry", args=[obj.pk])
                    if retry_allowed(request.user) and counts.get(InstallState.FAILED)
                    else None
                ),
            }
        )
        return context

    def editor_delete(self, request, obj):
        from ..services import app_delete

        name = str(obj)
        app_delete(actor=self.actor(request), app=obj)
        return f"The app “{name}” was deleted; devices that had it installed as required will be told to remove it."

    def delete_consequences(self, obj):
        installed = AppInstall.objects.filter(app=obj, state=InstallState.INSTALLED).count()
        return [
            f"It is installed on {_plural(installed, 'device')}; managed installs are removed at their next check-in.",
            "Its versions, packages, assignments and install records are deleted with it.",
        ]

    # Versions, install status, retry --------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/versions/", wrap(self.versions_view), name="apps_app_versions"),
            path("<path:object_id>/installs/", wrap(self.installs_view), name="apps_app_installs"),
            path("<path:object_id>/retry/", wrap(self.retry_view), name="apps_app_retry"),
            *super().get_urls(),
        ]

    def _context(self, request, app, title, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "app": app,
            "change_url": reverse("admin:apps_app_change", args=[app.pk]),
            **extra,
        }

    def versions_view(self, request, object_id):
        """The versions, newest first, with the devices on each; a new version is uploaded here."""
        app = self.get_object(request, unquote(object_id))
        can_upload = app.kind != AppKind.WEB and authz.can(request.user, CHANGE, app)
        if request.method == "POST" and not can_upload:
            raise PermissionDenied
        form = None
        if can_upload:
            form = VersionForm(request.POST or None, request.FILES or None, app=app)
            if request.method == "POST" and form.is_valid():
                from ..services import app_version_add

                try:
                    version = app_version_add(
                        actor=self.actor(request),
                        app=app,
                        version=form.cleaned_data.get("version") or None,
                        package=form.cleaned_data.get("package"),
                        min_os_version=form.cleaned_data.get("min_os_version") or "",
                        notes=form.cleaned_data.get("notes") or "",
                    )
                except ValidationError as exc:
                    for key, sentences in (
                        exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
                    ).items():
                        form.add_error(key if key in form.fields else None, sentences)
                else:
                    app.refresh_from_db()
                    sentence = supersedence_sentence(app, supersedence(app, request.user))
                    self.message_user(
                        request,
                        " ".join(filter(None, [f"Version {version.version} of “{app.name}” was added.", sentence])),
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:apps_app_versions", args=[app.pk]))
        installs = authz.restrict(AppInstall.objects.filter(app=app), request.user, VIEW_INSTALL)
        on_version = dict(
            installs.filter(state=InstallState.INSTALLED)
            .order_by()
            .values_list("installed_version")
            .annotate(n=Count("pk"))
        )
        versions = list(AppVersion.objects.filter(app=app).order_by("-version_key", "-created_at"))
        context = self._context(
            request,
            app,
            f"Versions of “{app}”",
            versions=[(v, on_version.get(v.version, 0), v.pk == app.current_version_id) for v in versions],
            form=form,
            supersedence=supersedence_sentence(app, supersedence(app, request.user)),
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/apps/app/versions.html", context)

    def installs_view(self, request, object_id):
        """Where the app stands on each device: counts and a chart by state, then the devices page by page."""
        app = self.get_object(request, unquote(object_id))
        if not authz.has_any(request.user, VIEW_INSTALL):
            raise PermissionDenied
        counts = install_counts([app.pk], request.user).get(app.pk, {})
        installs = authz.restrict(AppInstall.objects.filter(app=app), request.user, VIEW_INSTALL)
        state = request.GET.get("state", "")
        if state in InstallState.values:
            installs = installs.filter(state=state)
        else:
            state = ""
        page = Paginator(installs.select_related("device").order_by("device__name", "device_id"), 100).get_page(
            request.GET.get("p")
        )
        may_view_device = authz.has_any(request.user, "devices.view_device")
        rows = [
            {
                "install": i,
                "device_url": (
                    reverse("admin:devices_device_change", args=[i.device_id])
                    if may_view_device and authz.can(request.user, "devices.view_device", i.device)
                    else None
                ),
            }
            for i in page.object_list
        ]
        context = self._context(
            request,
            app,
            f"Install status of “{app}”",
            counts=[(s, InstallState(s).label, counts.get(s, 0), STATE_COLOR[s]) for s in STATE_ORDER],
            total=sum(counts.values()),
            chart=install_chart(counts, app.name),
            state=state,
            page=page,
            rows=rows,
            retry_url=(
                reverse("admin:apps_app_retry", args=[app.pk])
                if retry_allowed(request.user) and counts.get(InstallState.FAILED)
                else None
            ),
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/apps/app/installs.html", context)

    def retry_view(self, request, object_id):
        """Confirm, then queue the install again on every device where it failed and the person may retry."""
        app = self.get_object(request, unquote(object_id))
        if not retry_allowed(request.user):
            raise PermissionDenied
        installs_url = reverse("admin:apps_app_installs", args=[app.pk])
        failed = authz.restrict(AppInstall.objects.filter(app=app, state=InstallState.FAILED), request.user, RETRY)
        if request.method == "POST" and request.POST.get("post") == "yes":
            from ..services import app_installs_retry_failed

            retried = app_installs_retry_failed(actor=self.actor(request), installs=failed)
            retried = retried if isinstance(retried, int) else len(retried or [])
            self.message_user(
                request,
                f"“{app}” is queued again on {_plural(retried, 'device')}; they install it at their next check-in.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(installs_url)
        reasons = list(failed.exclude(reason="").order_by().values("reason").annotate(n=Count("pk")).order_by("-n")[:5])
        context = self._context(
            request,
            app,
            f"Retry “{app}” where it failed?",
            failed=failed.count(),
            reasons=[(r["reason"], r["n"]) for r in reasons],
            installs_url=installs_url,
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/apps/app/retry_confirm.html", context)


def blocked_summary(blocked: dict[str, int], url: str):
    """A blocked app's rows, worded for what blocking means: where it is blocked, where it was found."""
    total = sum(blocked.values())
    found = blocked.get(InstallState.PENDING, 0)
    failed = blocked.get(InstallState.FAILED, 0) + blocked.get(InstallState.INSTALLED, 0)
    absent = blocked.get(InstallState.NOT_INSTALLED, 0)
    badges = [format_html('<span class="blocked-total">Blocked on {}</span>', _plural(total, "device"))]
    if found:
        badges.append(
            format_html(
                '<a class="delivery-state install-state state-pending" href="{}?state=pending">'
                "found on {}, removal queued</a>",
                url,
                found,
            )
        )
    if failed:
        badges.append(
            format_html(
                '<a class="delivery-state install-state state-failed" href="{}?state=failed">still on {}</a>',
                url,
                failed,
            )
        )
    if absent:
        badges.append(format_html('<span class="quiet">absent on {}</span>', absent))
    return format_html_join(" ", "{}", ((badge,) for badge in badges))


def install_state_badge(install: AppInstall):
    return format_html(
        '<span class="delivery-state install-state state-{}">{}</span>', install.state, install.get_state_display()
    )
