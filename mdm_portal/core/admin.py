from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, Permission
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from . import authz, services
from .admin_base import AuthzAdminMixin, AuthzModelAdmin, ScopedRelatedListFilter
from .models import APIToken, Role, RoleAssignment, Scope, User, UserGroup
from .roles import NEVER

# Role assignments own these groups; editing them by hand would bypass core.rbac.
admin.site.unregister(Group)


@admin.register(Scope)
class ScopeAdmin(AuthzModelAdmin):
    list_display = ["name", "slug", "description"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(User)
class UserAdmin(AuthzAdminMixin, DjangoUserAdmin):
    list_display = ["username", "email", "first_name", "last_name", "scope", "department", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_active", ("scope", ScopedRelatedListFilter), "user_groups"]
    list_select_related = ["scope"]
    search_fields = ["username", "first_name", "last_name", "email"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email", "department", "scope")}),
        (
            "Access",
            {
                "fields": ("is_active", "is_staff", "is_superuser"),
                "description": "Permissions come from role assignments, not from here.",
            },
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "scope", "password1", "password2")}),
    )
    readonly_fields = ["last_login", "date_joined", "effective_policy", "app_instances", "offboarding"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.append("is_superuser")
        if obj is not None and obj.is_active:
            # Deactivation offboards the person (retires or wipes their devices): only through the
            # offboarding page, with its preview and confirmation. Reactivating stays a tick here.
            fields.append("is_active")
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        policy_viewer = authz.has_any(request.user, "policies.view_configurationprofile") or authz.has_any(
            request.user, "policies.view_compliancepolicy"
        )
        if obj is not None and policy_viewer:
            fieldsets = (*fieldsets, ("Configuration and compliance", {"fields": ("effective_policy",)}))
        if obj is not None and authz.has_any(request.user, "apps.view_managedappinstance"):
            fieldsets = (*fieldsets, ("Apps", {"fields": ("app_instances",)}))
        if obj is not None and (
            authz.has_any(request.user, "retirement.view_offboarding")
            or authz.has_any(request.user, "retirement.run_offboarding")
        ):
            fieldsets = (*fieldsets, ("Offboarding", {"fields": ("offboarding",)}))
        return fieldsets

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            obj.viewer = request.user  # the read-only "offboarding" field depends on who looks
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    @admin.display(description="Offboarding")
    def offboarding(self, obj):
        from retirement.admin.offboarding import person_offboarding_link

        return person_offboarding_link(obj, obj.viewer)

    @admin.display(description="Their devices")
    def effective_policy(self, obj):
        url = reverse("admin:policies_effective_user", args=[obj.pk])
        return format_html(
            '<a href="{}" id="effective-policy-link">{}</a>',
            url,
            "Every setting and compliance rule that applies to their devices",
        )

    @admin.display(description="App protection")
    def app_instances(self, obj):
        from apps.admin.protection import person_app_instances_link

        return person_app_instances_link(obj)


class UserGroupForm(forms.ModelForm):
    class Meta:
        model = UserGroup
        fields = ["name", "description", "source", "external_id", "members"]


@admin.register(UserGroup)
class UserGroupAdmin(AuthzModelAdmin):
    form = UserGroupForm
    list_display = ["name", "source", "description"]
    list_filter = ["source"]
    search_fields = ["name", "external_id"]
    autocomplete_fields = ["members"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        services.user_group_save(
            actor=self.actor(request),
            group=obj,
            name=data["name"],
            description=data["description"],
            members=list(data["members"]),
            source=data["source"],
            external_id=data["external_id"],
        )

    def save_related(self, request, form, formsets, change):
        """Members were set by the service (which also re-syncs role assignments)."""


def assignable_permissions():
    """Permissions a role can hold: not Django's bookkeeping, not the scope twins."""
    exclude = Q()
    for pattern in NEVER:
        app, codename = pattern.split(".", 1)
        app_q = Q() if app == "*" else Q(content_type__app_label=app)
        if codename == "*":
            exclude |= app_q
        elif codename.startswith("*") and codename.endswith("*"):
            exclude |= app_q & Q(codename__contains=codename.strip("*"))
        elif codename.startswith("*"):
            exclude |= app_q & Q(codename__endswith=codename[1:])
    return Permission.objects.exclude(exclude).select_related("content_type")


class RoleForm(forms.ModelForm):
    class Meta:
        model = Role
        fields = ["name", "description", "permissions"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "permissions" in self.fields:
            self.fields["permissions"].queryset = assignable_permissions()


@admin.register(Role)
class RoleAdmin(AuthzModelAdmin):
    form = RoleForm
    list_display = ["name", "is_builtin", "description"]
    list_filter = ["is_builtin"]
    search_fields = ["name"]
    filter_horizontal = ["permissions"]
    readonly_fields = ["is_builtin"]

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_builtin:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_builtin:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        services.role_save(
            actor=self.actor(request),
            role=obj,
            name=data["name"],
            description=data["description"],
            permissions=list(data["permissions"]),
        )

    def save_related(self, request, form, formsets, change):
        """Permissions were set by the service (which also re-grants every assignment of the role)."""

    def delete_via_service(self, request, obj):
        services.role_delete(actor=self.actor(request), role=obj)


class RoleAssignmentForm(forms.ModelForm):
    class Meta:
        model = RoleAssignment
        fields = ["name", "description", "role", "users", "user_groups", "all_scopes", "scopes"]

    def clean(self):
        data = super().clean()
        if data.get("all_scopes") and data.get("scopes"):
            raise forms.ValidationError("Choose either 'all scopes' or some scopes, not both.")
        if not data.get("all_scopes") and not data.get("scopes"):
            raise forms.ValidationError("Choose the scopes this assignment covers, or tick 'all scopes'.")
        return data


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(AuthzModelAdmin):
    form = RoleAssignmentForm
    list_display = ["name", "role", "all_scopes", "scope_list"]
    list_filter = ["role", "all_scopes"]
    list_select_related = ["role"]
    search_fields = ["name"]
    autocomplete_fields = ["users"]
    filter_horizontal = ["user_groups", "scopes"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("scopes")

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return "All scopes" if obj.all_scopes else ", ".join(s.name for s in obj.scopes.all())

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        services.role_assignment_save(
            actor=self.actor(request),
            assignment=obj,
            name=data["name"],
            description=data["description"],
            role=data["role"],
            users=list(data["users"]),
            user_groups=list(data["user_groups"]),
            all_scopes=data["all_scopes"],
            scopes=list(data["scopes"]),
        )

    def save_related(self, request, form, formsets, change):
        """Members and scopes were set by the service, which granted the permissions too."""

    def delete_via_service(self, request, obj):
        services.role_assignment_delete(actor=self.actor(request), assignment=obj)


class APITokenForm(forms.ModelForm):
    class Meta:
        model = APIToken
        fields = ["user", "name", "expires_at"]

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError(services.EXPIRY_IN_THE_PAST)
        return expires_at


@admin.register(APIToken)
class APITokenAdmin(AuthzModelAdmin):
    form = APITokenForm
    list_display = ["name", "user", "prefix", "created_by", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_select_related = ["user", "created_by"]
    search_fields = ["name", "prefix", "user__username"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ["user", "name", "prefix", "created_by", "expires_at", "created_at", "last_used_at", "revoked_at"]
        return []

    def get_autocomplete_fields(self, request):
        # Only a superuser issues tokens for other accounts (core.services.api_token_create).
        return ["user"] if request.user.is_superuser else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = User.objects.filter(pk=request.user.pk)
            kwargs["initial"] = request.user.pk
            kwargs["help_text"] = "Your own account: a token acts with all of your roles."
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        # A token is issued, used and revoked; it is never edited.
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        token, plaintext = services.api_token_create(
            actor=self.actor(request), user=data["user"], name=data["name"], expires_at=data["expires_at"]
        )
        obj.pk, obj.prefix = token.pk, token.prefix
        self.message_user(
            request,
            format_html(
                "Copy this token now; it will not be shown again: <code id='new-api-token'>{}</code>", plaintext
            ),
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected tokens", permissions=["delete"])
    def revoke(self, request, queryset):
        for token in queryset:
            services.api_token_revoke(actor=self.actor(request), token=token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)

    def delete_via_service(self, request, obj):
        services.api_token_revoke(actor=self.actor(request), token=obj)


def _authz_wrap(model, admin_class):
    return type(f"Authz{admin_class.__name__}", (AuthzAdminMixin, admin_class), {})


class SignInRecordAdminMixin(AuthzAdminMixin):
    """Lockouts and authenticator apps: global administrators view and delete them, nobody edits them.

    Their permissions are sensitive (``core.roles``): only the Global administrator role holds them.
    Deleting a lockout (access attempt) unlocks that username and address at once; deleting a
    person's authenticator app lets them sign in with the password alone and set up a new one.
    """

    actions = ["unlock"]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Unlock: delete the selected lockouts", permissions=["delete"])
    def unlock(self, request, queryset):
        count = 0
        for obj in queryset:
            self.delete_model(request, obj)
            count += 1
        self.message_user(request, f"Unlocked {count} sign-in lockout(s).", messages.SUCCESS)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.model._meta.model_name != "accessattempt":
            actions.pop("unlock", None)
        return actions


# Third-party admins (the Celery beat schedules, sign-in lockouts, authenticator apps) go under authz too.
_SIGN_IN_APPS = {"axes", "otp_totp"}
for _model, _model_admin in list(admin.site._registry.items()):
    _app = _model._meta.app_label
    if _app in {"django_celery_beat", *_SIGN_IN_APPS} and not isinstance(_model_admin, AuthzAdminMixin):
        admin.site.unregister(_model)
        if _app in _SIGN_IN_APPS:
            admin.site.register(
                _model, type(f"Authz{type(_model_admin).__name__}", (SignInRecordAdminMixin, type(_model_admin)), {})
            )
        else:
            admin.site.register(_model, _authz_wrap(_model, type(_model_admin)))

from . import admin_audit, admin_outbox  # noqa: E402, F401 (register the audit log and task outbox pages)
