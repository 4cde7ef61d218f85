import pytest
from django.utils import timezone

from apps.choices import AppKind, InstallState
from apps.models import App, AppInstall
from devices.choices import Platform
from devices.models import DeviceInventory
from policies.choices import DeliveryState, ProfileKind
from policies.models import ConfigurationProfile, ProfileDelivery
from retirement.models import RetirementSettings
from tests.factories import StaffFactory, grant


@pytest.fixture
def retirement_settings(db):
    return RetirementSettings.load()


@pytest.fixture
def admins(db):
    """Two global administrators (every permission, every scope)."""
    first, second = StaffFactory(username="admin-one"), StaffFactory(username="admin-two")
    grant([first, second], "Global administrator")
    return first, second


def give_managed_set(device):
    """The portal installed an app and delivered a profile; the device also holds a personal app."""
    app = App.objects.create(
        name="Outlook", kind=AppKind.STORE, platform=device.platform, identifier="com.microsoft.Office.Outlook"
    )
    AppInstall.objects.create(device=device, app=app, state=InstallState.INSTALLED)
    profile = ConfigurationProfile.objects.create(name=f"Wi-Fi {device.pk}", kind=ProfileKind.WIFI)
    ProfileDelivery.objects.create(device=device, profile=profile, state=DeliveryState.SUCCEEDED, version=1)
    profile_identifier = f"org.mdmportal.profile.{profile.uuid}"
    DeviceInventory.objects.update_or_create(
        device=device,
        defaults={
            "installed_apps": [
                {"identifier": app.identifier, "name": "Outlook"},
                {"identifier": "com.spotify.client", "name": "Spotify"},
            ],
            "facts": {"profiles": [{"identifier": profile_identifier, "version": 1}]},
            "reported_at": timezone.now(),
        },
    )
    return app, profile_identifier


def clean_report():
    return {
        "installed_apps": [{"identifier": "com.spotify.client", "name": "Spotify"}],
        "profiles": [],
        "corporate_data": {"present": False, "details": []},
    }


__all__ = ["Platform", "clean_report", "give_managed_set"]
