"""factory-boy factories that build objects through the real services and lifecycle transitions."""

import itertools

import factory
from django.contrib.auth import get_user_model

from devices import lifecycle
from devices import services as device_services
from devices.choices import EnrollmentMethod, LifecycleState, Ownership, Platform
from devices.models import Device
from mdm_portal.core import services as core_services
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import Role, Scope

SYSTEM = Actor.system("tests")
PASSWORD = "correct-horse-battery-staple"
_assignment_numbers = itertools.count(1)


class ScopeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scope

    name = factory.Sequence(lambda n: f"Scope {n}")
    slug = factory.Sequence(lambda n: f"scope-{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return core_services.scope_create(actor=SYSTEM, **kwargs)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password(PASSWORD)


class StaffFactory(UserFactory):
    is_staff = True


class DeviceFactory(factory.Factory):
    """A device registered and (unless ``state`` says otherwise) enrolled through the services."""

    class Meta:
        model = Device

    name = factory.Sequence(lambda n: f"DEVICE-{n:05d}")
    platform = Platform.IOS
    ownership = Ownership.CORPORATE
    scope = factory.SubFactory(ScopeFactory)
    primary_user = None
    enrollment_method = EnrollmentMethod.USER_SELF_SERVICE
    os_version = "17.4"
    model = "iPhone15,2"
    manufacturer = "Apple"
    serial_number = factory.Sequence(lambda n: f"SN{n:08d}")
    imei = ""
    state = LifecycleState.ENROLLED

    @classmethod
    def _create(cls, model_class, *args, state=LifecycleState.ENROLLED, **kwargs):
        device = device_services.device_register(actor=SYSTEM, **kwargs)
        if state in (LifecycleState.ENROLLED, LifecycleState.RETIRING, LifecycleState.RETIRED):
            lifecycle.enroll(device, actor=SYSTEM)
        if state in (LifecycleState.RETIRING, LifecycleState.RETIRED):
            lifecycle.start_retirement(device, actor=SYSTEM)
        if state == LifecycleState.RETIRED:
            lifecycle.finish_retirement(device, actor=SYSTEM)
        return device

    @classmethod
    def _build(cls, model_class, *args, state=None, **kwargs):
        return model_class(**kwargs)


def grant(user_or_users, role_name: str, scopes=None, *, name: str | None = None, user_groups=()):
    """Give ``role_name`` to people over ``scopes`` (a list), or over all scopes when ``scopes`` is None."""
    users = user_or_users if isinstance(user_or_users, list | tuple) else [user_or_users]
    role = Role.objects.get(name=role_name)
    return core_services.role_assignment_save(
        actor=SYSTEM,
        name=name or f"{role_name} for {', '.join(u.username for u in users)} #{next(_assignment_numbers)}",
        role=role,
        users=list(users),
        user_groups=list(user_groups),
        all_scopes=scopes is None,
        scopes=list(scopes or []),
    )
