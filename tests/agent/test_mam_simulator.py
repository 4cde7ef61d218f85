"""The simulator's managed-app mode end to end against the real portal (live server): sign in,
register Outlook and Teams, receive and apply the protection policy, receive a selective wipe,
drop the org data, confirm, stop."""

import json

import pytest
from django.core.cache import cache

from agent.__main__ import main
from agent.client import ProtocolError
from agent.mam import MamClient, plan_instances, run_mam_simulation
from apps.choices import WipeStatus
from apps.models import AppDataWipe, AppProtectionPolicy, ManagedAppInstance
from apps.services.mam import app_data_wipe_user
from tests.apps.mam_helpers import TEAMS_IOS, catalog_app, protection_policy, user_group
from tests.factories import PASSWORD, SYSTEM, UserFactory


@pytest.fixture(autouse=True)
def fresh_sign_in_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def employee(transactional_db):
    person = UserFactory(username="emma")
    sales = user_group("Sales", [person])
    apps = [catalog_app(), catalog_app(TEAMS_IOS, name="Teams")]
    protection_policy("iOS baseline", apps, include=[sales], min_app_version="4.0", pin_length=8)
    return person


def test_instances_get_their_policy_then_a_wipe_and_confirm_it(live_server, employee):
    lines = []

    def log(message):
        lines.append(message)
        # Runs in this thread between requests: IT wipes once both apps registered.
        if sum("registered as instance" in line for line in lines) == 2 and "registered" in message:
            app_data_wipe_user(actor=SYSTEM, user=employee, reason="Phone lost")

    report = run_mam_simulation(live_server.url, "emma", PASSWORD, 2, duration=30, interval=0.05, log=log)

    assert (report.registered, report.wipes_confirmed, report.checkins_failed) == (2, 2, 0)
    assert report.policies_applied == 2
    assert [app["app"] for app in report.apps] == ["com.microsoft.Office.Outlook", TEAMS_IOS]
    assert all(app["wiped"] and not app["org_data_present"] and app["stopped"] == "wiped" for app in report.apps)
    assert any("applied policy version" in line and "PIN 8 digits" in line for line in lines)
    assert any("org data removed" in line for line in lines)
    assert report.duration_seconds < 30  # it stopped when both apps were wiped, not at the deadline
    assert set(AppDataWipe.objects.values_list("status", flat=True)) == {WipeStatus.CONFIRMED}
    assert ManagedAppInstance.objects.filter(revoked_at__isnull=True).count() == 0
    # The state each app reported is what IT sees.
    assert all(instance.state["org_data_present"] for instance in ManagedAppInstance.objects.all())


def test_an_old_app_is_blocked_and_says_why(live_server, employee):
    lines = []
    AppProtectionPolicy.objects.update(min_app_version="9.0")
    report = run_mam_simulation(live_server.url, "emma", PASSWORD, 1, duration=0, interval=0, log=lines.append)
    assert report.access_blocked >= 1
    assert report.apps[0]["access"] == "app_version_too_old"
    assert any("blocked (app_version_too_old)" in line and "Update the app" in line for line in lines)


def test_the_command_line_signs_in_with_the_password_from_the_environment(live_server, employee, monkeypatch, capsys):
    monkeypatch.setenv("MDM_MAM_PASSWORD", PASSWORD)
    argv = ["mam", "--server", live_server.url, "--username", "emma", "--instances", "3"]
    assert main([*argv, "--duration", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["registered"] == 3 and report["checkins"] == 3
    assert [app["device_name"] for app in report["apps"]] == ["emma's iPhone 1", "emma's iPhone 1", "emma's iPhone 2"]
    assert ManagedAppInstance.objects.filter(user=employee).count() == 3

    monkeypatch.setenv("MDM_MAM_PASSWORD", "wrong")
    assert main([*argv, "--duration", "0"]) == 1
    assert "Signing in as emma failed: The username or password is wrong" in capsys.readouterr().err


def test_the_command_line_needs_a_password(monkeypatch, capsys):
    monkeypatch.delenv("MDM_MAM_PASSWORD", raising=False)
    assert main(["mam", "--server", "http://127.0.0.1:9", "--username", "emma"]) == 2
    assert "--password" in capsys.readouterr().err


def test_the_simulator_refuses_a_remote_server_and_bad_arguments():
    with pytest.raises(ValueError, match="not on this machine"):
        run_mam_simulation("http://192.0.2.10", "emma", "x")
    with pytest.raises(ValueError, match="not a platform with managed apps"):
        plan_instances("emma", "linux", 1)
    with pytest.raises(ValueError, match="at least one"):
        plan_instances("emma", "ios", 0)


def test_the_client_reads_oauth_errors(live_server, employee):
    with MamClient(live_server.url) as client, pytest.raises(ProtocolError) as refused:
        client.sign_in("emma", "wrong")
    assert (refused.value.status, refused.value.code) == (400, "invalid_grant")
