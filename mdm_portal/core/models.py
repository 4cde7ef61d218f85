"""Directory (people, user groups, scopes), roles and their assignments, API tokens and the audit trail."""

from django.contrib.auth.models import AbstractUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from .choices import ActorType, UserGroupSource
from .scoped_permissions import scope_model_permissions


class Scope(models.Model):
    """A slice of the organisation (a region, a subsidiary, a lab), like Intune's scope tags.

    Devices, and later policies and apps, carry exactly one scope. Role assignments grant their
    permissions over one or more scopes; see ``core.rbac``.
    """

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = scope_model_permissions()

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person: an employee, an IT staff member, or an automation account (API tokens only).

    ``scope`` is the person's home scope: helpdesk operators see the people of their scopes.
    """

    scope_field = "scope"

    scope = models.ForeignKey(Scope, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    department = models.CharField(max_length=100, blank=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        full_name = self.get_full_name()
        return f"{full_name} ({self.username})" if full_name else self.username


class UserGroup(models.Model):
    """A directory group of people: the target of policy and app assignments, and of role assignments."""

    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=20, choices=UserGroupSource.choices, default=UserGroupSource.MANUAL)
    external_id = models.CharField(
        max_length=255, blank=True, help_text="The group's identifier in the directory it is synchronised from."
    )
    members = models.ManyToManyField(User, blank=True, related_name="user_groups")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.Model):
    """A named set of permissions. Built-in roles are defined in ``core.roles`` and read-only."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    is_builtin = models.BooleanField(default=False, editable=False)
    permissions = models.ManyToManyField(Permission, blank=True, related_name="+")

    class Meta:
        ordering = ["-is_builtin", "name"]

    def __str__(self) -> str:
        return self.name


class RoleAssignment(models.Model):
    """Gives a role to members (people and/or user groups) over some scopes, or over all of them.

    Each assignment owns a Django group that holds its effective members; the role's permissions
    are that group's permissions when ``all_scopes`` is set, and guardian object permissions on the
    assigned scopes otherwise. ``core.rbac`` keeps both in step with every change.
    """

    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="assignments")
    users = models.ManyToManyField(User, blank=True, related_name="role_assignments")
    user_groups = models.ManyToManyField(UserGroup, blank=True, related_name="role_assignments")
    all_scopes = models.BooleanField(default=False, help_text="Grant the role everywhere, in every scope.")
    scopes = models.ManyToManyField(Scope, blank=True, related_name="role_assignments")
    auth_group = models.OneToOneField(Group, null=True, editable=False, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ScopeUserObjectPermission(UserObjectPermissionBase):
    """Guardian's direct foreign-key table for grants on scopes to single people."""

    content_object = models.ForeignKey(Scope, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


class ScopeGroupObjectPermission(GroupObjectPermissionBase):
    """Guardian's direct foreign-key table for grants on scopes to role assignments' groups."""

    content_object = models.ForeignKey(Scope, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = False


class APIToken(models.Model):
    """A bearer token for automation. Only a SHA-256 hash is stored; the token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'HR offboarding job'.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        help_text="Who issued it (empty: a system job).",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} (mdm_{self.prefix}_…)"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    """One mutation: who did what to which object, with the changed values (secrets redacted).

    Append-only: the model refuses updates and deletes, the admin offers neither, and on
    PostgreSQL a trigger refuses them in the database too. Actor and target are kept as text
    alongside their ids so the record survives the deletion of either. ``scope`` is the target's
    scope at the time, so a scoped operator sees the trail of their own scope.
    """

    scope_field = "scope"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_type = models.CharField(max_length=20, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor_label = models.CharField(max_length=255)
    verb = models.CharField(max_length=100, db_index=True)
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    scope = models.ForeignKey(
        Scope, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    changes = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # Related-object access and deletion collectors use the base manager: make it append-only too.
        base_manager_name = "objects"
        indexes = [
            models.Index(fields=["target_type", "target_id", "-created_at"], name="audit_target_idx"),
            models.Index(fields=["scope", "-created_at"], name="audit_scope_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.verb} {self.target_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")


class OutboxMessage(models.Model):
    """A Celery task message written in the same transaction as the change that asks for it.

    Sent to the broker once the transaction commits; a row exists only while the message has not
    reached the broker (the broker was down): the relay (``core.outbox.outbox_relay``) sends it
    later. See ``mdm_portal/core/outbox.py`` and the README, "When the broker or the database is down".

    A row that can never be sent (its task is unknown, its sealed payload no longer decrypts, its
    JSON is broken) is *dead*: ``dead_at`` is set, the reason is in ``last_error``, and no relay
    picks it up again until an administrator retries it (the "Task outbox" admin page).
    """

    task = models.CharField(max_length=200)
    # JSON of {"args": [...], "kwargs": {...}}; Fernet-encrypted when the message carries secrets
    # (``sealed``), so a passcode waiting for the broker is not readable in the database.
    payload = models.TextField()
    sealed = models.BooleanField(default=False)
    shown = models.TextField(blank=True, help_text="What the message carries, secrets redacted.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        verbose_name = "task outbox message"
        verbose_name_plural = "task outbox messages"

    def __str__(self) -> str:
        return f"{self.task} #{self.pk}"

    @property
    def is_dead(self) -> bool:
        return self.dead_at is not None
