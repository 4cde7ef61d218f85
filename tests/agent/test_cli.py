"""``python -m agent``: enrol, run (check in, execute, report), rotate the secret, simulate."""

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.__main__ import EXIT_FAILED, EXIT_OK, EXIT_RETIRED, EXIT_USAGE, main
from agent.state import load_state
from tests.agent.fake_portal import CODE, TOKEN

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def state_path(tmp_path):
    return tmp_path / "agent" / "state.json"


@pytest.fixture
def enrolled(portal, state_path):
    assert main(["enroll", "--server", portal.url, "--token", TOKEN, "--state", str(state_path)]) == EXIT_OK
    return portal.devices[load_state(state_path).device_id]


def results_of(device):
    return {result["id"]: result for result in device.results}


def test_enroll_saves_a_private_state_with_the_secret(portal, state_path, capsys):
    assert main(["enroll", "--server", portal.url, "--token", TOKEN, "--state", str(state_path)]) == EXIT_OK

    state = load_state(state_path)
    device = portal.devices[state.device_id]
    assert state.device_secret == device.secret and state.server_url == portal.url
    assert stat.S_IMODE(state_path.stat().st_mode) == 0o600
    assert device.identity["platform"] == "linux"
    assert f"Enrolled as device {state.device_id}" in capsys.readouterr().out
    assert device.secret not in capsys.readouterr().out


def test_enroll_with_a_code(portal, state_path):
    assert main(["enroll", "--server", portal.url, "--code", CODE, "--state", str(state_path)]) == EXIT_OK


def test_a_refused_enrolment_prints_the_portals_sentence_and_saves_nothing(portal, state_path, capsys):
    status = main(["enroll", "--server", portal.url, "--token", "enr_wrong", "--state", str(state_path)])

    assert status == EXIT_FAILED
    assert "This enrolment token is not valid. Ask IT for a new one." in capsys.readouterr().err
    assert not state_path.exists()


def test_an_enrolled_host_is_not_enrolled_again_by_accident(portal, enrolled, state_path, capsys):
    assert main(["enroll", "--server", portal.url, "--token", TOKEN, "--state", str(state_path)]) == EXIT_FAILED
    assert "--force" in capsys.readouterr().err

    assert main(["enroll", "--server", portal.url, "--token", TOKEN, "--state", str(state_path), "--force"]) == 0
    assert load_state(state_path).device_id != enrolled.device_id


def test_run_once_checks_in_executes_and_reports_results(portal, enrolled, state_path):
    lock = portal.queue(enrolled.device_id, "lock", {"message": "Locked by IT", "phone_number": ""})
    wipe = portal.queue(enrolled.device_id, "wipe")
    rename = portal.queue(enrolled.device_id, "rename", {"name": "renamed-by-it"})

    assert main(["run", "--once", "--state", str(state_path)]) == EXIT_OK

    assert len(enrolled.inventories) == 2  # enrolment, then one check-in
    results = results_of(enrolled)
    assert results[lock]["status"] == "error" and "not supported" in results[lock]["error"]
    assert results[wipe]["status"] == "error" and "not available on a Linux host" in results[wipe]["error"]
    assert results[rename]["status"] == "error" and "--allow-changes" in results[rename]["error"]
    assert enrolled.pending == []


def test_sync_triggers_an_immediate_check_in(portal, enrolled, state_path):
    sync = portal.queue(enrolled.device_id, "sync")

    assert main(["run", "--once", "--state", str(state_path)]) == EXIT_OK

    assert results_of(enrolled)[sync]["status"] == "acknowledged"
    assert len(enrolled.inventories) == 3  # enrolment, the check-in that brought sync, the one it asked for


def test_a_retired_device_stops_and_deletes_its_state(portal, enrolled, state_path, capsys):
    portal.retire(enrolled.device_id)

    assert main(["run", "--state", str(state_path), "--interval", "1"]) == EXIT_RETIRED

    assert not state_path.exists()
    assert "retired or deleted" in capsys.readouterr().err


def test_a_refused_secret_says_to_enrol_again(portal, enrolled, state_path, capsys):
    enrolled.secret = "dsk_changed_elsewhere"

    assert main(["run", "--once", "--state", str(state_path)]) == EXIT_FAILED

    assert "Enrol again" in capsys.readouterr().err
    assert state_path.exists()


def test_run_without_enrolment_says_how_to_enrol(state_path, capsys):
    assert main(["run", "--once", "--state", str(state_path)]) == EXIT_FAILED

    assert "not enrolled" in capsys.readouterr().err


def test_run_once_fails_when_the_server_is_down(portal, enrolled, state_path):
    portal.stop()

    assert main(["run", "--once", "--state", str(state_path), "--timeout", "2"]) == EXIT_FAILED


def test_rotate_secret_saves_the_new_secret(portal, enrolled, state_path):
    old = load_state(state_path).device_secret

    assert main(["rotate-secret", "--state", str(state_path)]) == EXIT_OK

    new = load_state(state_path).device_secret
    assert new != old and new == enrolled.secret
    assert main(["run", "--once", "--state", str(state_path)]) == EXIT_OK


def test_simulate_prints_a_summary_or_json(portal, capsys):
    argv = ["simulate", "--server", portal.url, "--token", TOKEN, "--devices", "12", "--duration", "0.5"]
    argv += ["--interval", "0.1", "--concurrency", "3", "--seed", "4", "--platform-mix", "ios=1,linux=1"]

    assert main(argv) == EXIT_OK
    assert "check-ins/s" in capsys.readouterr().out

    assert main([*argv, "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["enrolled"] == 12 and report["platforms"] == {"ios": 6, "linux": 6} and report["seed"] == "4"


def test_simulate_refuses_a_bad_mix_or_a_remote_server(portal, capsys):
    argv = ["simulate", "--token", TOKEN, "--devices", "1"]

    assert main([*argv, "--server", portal.url, "--platform-mix", "palm=1"]) == EXIT_USAGE
    assert main([*argv, "--server", "http://192.0.2.10:8000"]) == EXIT_USAGE
    assert "not on this machine" in capsys.readouterr().err


def test_the_agent_package_never_imports_django():
    code = "import sys, agent.__main__, agent.simulator; sys.exit(any(m.split('.')[0] in ('django', 'mdm_portal', 'devices') for m in sys.modules))"  # noqa: E501

    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0  # noqa: S603


def test_python_m_agent_help_runs():
    completed = subprocess.run(
        [sys.executable, "-m", "agent", "--help"], cwd=REPO, capture_output=True, text=True, check=False
    )

    assert completed.returncode == 0
    assert "simulate" in completed.stdout
