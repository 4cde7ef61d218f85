"""Rate limits on the enrolment and access-check endpoints: 429 with Retry-After and a JSON error
that says what to do, counted in the shared cache."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from mdm_portal.core import services as core_services
from mdm_portal.core.throttling import AccessCheckThrottle, EnrollAddressThrottle
from tests.factories import SYSTEM, StaffFactory, grant

pytestmark = pytest.mark.django_db

ENROLL = reverse("agent:enroll")
ACCESS = reverse("access:check")


@pytest.fixture(autouse=True)
def fresh_counts():
    cache.clear()
    yield
    cache.clear()


def enrol(client, address="10.2.2.2"):
    body = {"transport": "agent", "enrollment_code": "WRONG-CODE", "device": {"platform": "windows"}}
    return client.post(ENROLL, body, content_type="application/json", REMOTE_ADDR=address)


def test_enrolment_is_limited_per_address(client, settings):
    settings.MDM_ENROLL_RATE = "3/minute"
    for _ in range(3):
        assert enrol(client).status_code in (400, 403)
    limited = enrol(client)
    assert limited.status_code == 429
    assert 0 < int(limited["Retry-After"]) <= 60
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert "retry in" in error["message"] and "enrolment code" in error["message"]
    # Another address is counted on its own.
    assert enrol(client, address="10.3.3.3").status_code in (400, 403)


@pytest.fixture
def gate_token(db):
    from django.contrib.auth.models import Permission

    account = StaffFactory(username="vpn-gate", is_staff=False)
    permission = Permission.objects.get(content_type__app_label="devices", codename="check_device_access")
    role = core_services.role_save(actor=SYSTEM, name="Access gate", permissions=[permission])
    grant(account, role.name)
    return core_services.api_token_create(actor=SYSTEM, user=account, name="vpn gate")[1]


def test_access_check_is_limited_per_gate(client, settings, gate_token):
    settings.MDM_ACCESS_CHECK_RATE = "2/minute"
    for _ in range(2):
        assert client.get(ACCESS, HTTP_AUTHORIZATION=f"Bearer {gate_token}").status_code == 401  # unknown device
    limited = client.get(ACCESS, HTTP_AUTHORIZATION=f"Bearer {gate_token}")
    assert limited.status_code == 429
    assert 0 < int(limited["Retry-After"]) <= 60
    assert "MDM_ACCESS_CHECK_RATE" in limited.json()["detail"]


def test_throttles_count_in_the_shared_default_cache():
    # The default cache is Redis when REDIS_URL is set (tests/security/test_headers.py checks that);
    # the managed-app sign-in throttles count there too.
    from apps.mam_api.views import SignInAddressThrottle, SignInUserThrottle

    for throttle in (EnrollAddressThrottle, AccessCheckThrottle, SignInAddressThrottle, SignInUserThrottle):
        assert throttle.cache._alias == "default"
