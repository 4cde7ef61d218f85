"""The IT console's base: every ModelAdmin asks ``core.authz`` what the user may see and do.

* Lists, search, filters and autocomplete read ``get_queryset``, which is ``authz.restrict``.
* A change page for an object outside the user's scope is a 404, like a missing one; without the
  model's permission anywhere, every page of the model is a 403. An action that names no
  permission needs the change permission.
* Foreign-key and many-to-many dropdowns offer only objects the user may see; a scope dropdown
  offers only the scopes where the user may make this change.
* Saving and deleting go through services (``save_via_service``/``delete_via_service``), which
  audit every change with the acting person.
"""

from __future__ import annotations

from functools import update_wrapper

from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.timesince import timesince

from . import authz, otp
from .audit import Actor
from .models import Scope
from .services import record_delete, record_save


def relative_time(value, *, empty: str = "never"):
    """A list cell for a moment: "5 minutes ago", the exact date and time on hover (narrower than the date)."""
    if value is None:
        return empty
    exact = date_format(timezone.localtime(value), "DATETIME_FORMAT")
    ago = timesince(value, depth=1)
    shown = "just now" if ago.startswith("0\xa0") else f"{ago} ago"
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, shown)


def person_name(user, *, empty: str = "-"):
    """A list cell for a person: the full name (the username on hover), or the username when there is no name."""
    if user is None:
        return empty
    return format_html('<span title="{}">{}</span>', user.username, user.get_full_name() or user.username)


def _plain_value(value) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple):
        return ", ".join(_plain_value(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_plain_value(item)}" for key, item in value.items())
    return str(value)


def key_value_table(mapping, *, empty: str = "—"):
    """A read-only field for a JSON object (a command's payload, an audit event's changes): one row
    per key, "some key" for ``some_key``, nested values on one line; ``empty`` when there is nothing."""
    if not mapping:
        return empty
    if not isinstance(mapping, dict):
        return _plain_value(mapping)
    rows = ((capfirst(str(key).replace("_", " ")), _plain_value(value)) for key, value in mapping.items())
    return format_html(
        '<table class="key-value">{}</table>',
        format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>', rows),
    )


class ScopedRelatedListFilter(admin.RelatedFieldListFilter):
    """A foreign-key filter that offers only what the user may see, without scanning the list's table.

    Django's ``RelatedOnlyFieldListFilter`` would run ``SELECT DISTINCT fk FROM <table>`` over the
    whole (restricted) table on every page view; this asks ``authz`` for the related objects instead.
    """

    def field_choices(self, field, request, model_admin):
        related = field.remote_field.model
        if related is Scope:
            allowed = authz.scopes_for(request.user, authz.permission_name(model_admin.model, "view")) | (
                authz.scopes_for(request.user, authz.permission_name(model_admin.model, "change"))
            )
        else:
            allowed = authz.restrict(
                related._default_manager.all(), request.user, authz.permission_name(related, "view")
            )
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to={"pk__in": allowed.values("pk")}
        )


class MDMAdminSite(AdminSite):
    site_header = "Device lifecycle portal"
    site_title = "Device lifecycle portal"
    index_title = "IT console"
    # Password, plus the authenticator code for staff who set one up (``core.otp``).
    login_form = otp.ConsoleLoginForm
    login_template = "admin/mdm_login.html"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Bulk delete skips services and audit; destructive actions are explicit, confirmed actions.
        self.disable_action("delete_selected")

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        # A session begun without the code (a Company Portal sign-in) does not open the console for
        # someone who has an authenticator app: they sign in here again, with the code.
        return not otp.has_authenticator(request.user) or otp.is_verified(request.user)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)
        if getattr(view, "__name__", "") in {"logout", "otp_setup", "login"}:
            return inner

        def guarded(request, *args, **kwargs):
            # MDM_REQUIRE_STAFF_OTP: no console page until the staff member has set up an app.
            if self.has_permission(request) and otp.must_set_up(request.user):
                return redirect(f"{self.name}:otp_setup")
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, inner)

    def get_urls(self):
        def otp_setup(request):
            return otp.setup_view(self, request)

        return [
            path("two-factor/", self.admin_view(otp_setup), name="otp_setup"),
            *super().get_urls(),
        ]


class AuthzAdminMixin:
    """Mix into any ModelAdmin (ours or a library's) to put it under ``core.authz``."""

    def _perm(self, verb: str) -> str:
        return authz.permission_name(self.model, verb)

    def changelist_view(self, request, extra_context=None):
        # "Devices", not Django's "Select device to change"; a ModelAdmin's own title wins.
        extra_context = {"title": capfirst(self.opts.verbose_name_plural), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return authz.restrict(queryset, request.user, self._perm("view")) | authz.restrict(
            queryset, request.user, self._perm("change")
        )

    def has_module_permission(self, request):
        return authz.has_any(request.user, self._perm("view")) or authz.has_any(request.user, self._perm("change"))

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, "view", obj) or self._allowed(request, "change", obj)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, "change", obj)

    def has_add_permission(self, request, *args):
        return authz.has_any(request.user, self._perm("add"))

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, "delete", obj)

    def _allowed(self, request, verb: str, obj) -> bool:
        if obj is None:
            return authz.has_any(request.user, self._perm(verb))
        return authz.can(request.user, self._perm(verb), obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            return actions
        # Fail closed: an action that names no permission (a library's bulk enable/disable/run) is a write.
        return {name: action for name, action in actions.items() if getattr(action[0], "allowed_permissions", None)}

    def get_object(self, request, object_id, from_field=None):
        if not self.has_view_or_change_permission(request):
            # No permission on this kind of object anywhere: 403 like the list, whether or not the id exists.
            raise PermissionDenied
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Missing and out of scope look the same, and neither is a redirect with a hint.
            raise Http404(f"No {self.model._meta.verbose_name} with this id.")
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault("queryset", self._related_queryset(db_field, request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("queryset", self._related_queryset(db_field, request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _related_queryset(self, db_field, request):
        related = db_field.remote_field.model
        if related is Scope and getattr(self.model, "scope_field", None) == db_field.name:
            # Only scopes where the user may put objects of this kind.
            return authz.scopes_for(request.user, self._perm("change")) | authz.scopes_for(
                request.user, self._perm("add")
            )
        return authz.restrict(related._default_manager.all(), request.user, authz.permission_name(related, "view"))

    # Writes ------------------------------------------------------------------------------------

    def actor(self, request) -> Actor:
        return Actor.from_request(request)

    def save_via_service(self, request, obj, form, change) -> None:
        """Default: a plain audited save. Models with rules of their own override this."""
        record_save(
            actor=self.actor(request), instance=obj, fields=list(form.changed_data) or ["id"], created=not change
        )

    def delete_via_service(self, request, obj) -> None:
        record_delete(actor=self.actor(request), instance=obj)

    def save_model(self, request, obj, form, change):
        self.save_via_service(request, obj, form, change)

    def delete_model(self, request, obj):
        try:
            self.delete_via_service(request, obj)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class AuthzModelAdmin(AuthzAdminMixin, admin.ModelAdmin):
    list_per_page = 50
    show_full_result_count = False


class ReadOnlyAdminMixin:
    """For records that are facts (audit events): viewable, never added, changed or deleted."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
