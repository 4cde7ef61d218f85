"""``python -m agent``: enrol, run (check in, execute, report), rotate the secret, simulate."""

import argparse
import json
import logging
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.__main__ import EXIT_FAILED, EXIT_OK, EXIT_RETIRED, EXIT_USAGE, build_parser, main
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
    err = capsys.readouterr().err
    assert "--force discards this machine's saved enrolment" in err
    assert "ask IT to retire the device in the console" in err
    assert "replaces the old secret" not in err

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

    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one sentence, one line
    assert err.lower().count("enrol") == 2  # "enrolled again" once, then the command: the advice is said once
    assert "Enrol the device again" not in err
    assert "ask IT to retire the device in the console (or remove it in the Company Portal" in err
    assert f"python -m agent enroll --force --server {portal.url} --state {state_path}" in err
    assert state_path.exists()


def test_the_log_names_each_commands_type(portal, enrolled, state_path, caplog):
    lock = portal.queue(enrolled.device_id, "lock", {"message": "Locked by IT", "phone_number": ""})
    sync = portal.queue(enrolled.device_id, "sync")

    with caplog.at_level(logging.INFO, logger="agent"):
        assert main(["run", "--once", "--state", str(state_path)]) == EXIT_OK

    assert f"Command sync {sync}: acknowledged" in caplog.messages
    assert any(message.startswith(f"Command lock {lock}: error (") for message in caplog.messages)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["enroll", "--server", "127.0.0.1:8300", "--token", "t"], "'127.0.0.1:8300' is not a server URL"),
        (["enroll", "--server", "http://host:port", "--token", "t"], "'http://host:port' is not a server URL"),
        (["run", "--interval", "soon"], "argument --interval: 'soon' is not a number"),
        (["run", "--interval", "-1"], "argument --interval: '-1' must be a number, 0 or more"),
        (["run", "--timeout", "0"], "argument --timeout: must be more than 0"),
        (["simulate", "--server", "localhost", "--devices", "1"], "'localhost' is not a server URL"),
        (["simulate", "--server", "http://127.0.0.1:1", "--devices", "0"], "argument --devices: '0' must be 1"),
        (["simulate", "--server", "http://127.0.0.1:1", "--devices", "1", "--drift-rate", "2"], "between 0 and 1"),
        (["mam", "--server", "127.0.0.1:8300"], "'127.0.0.1:8300' is not a server URL"),
    ],
)
def test_a_wrong_argument_is_a_usage_error_without_a_traceback(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)

    assert exit_info.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err.splitlines()[-1]
    assert "Traceback" not in err


def test_python_m_agent_with_a_bad_server_prints_one_line_not_a_traceback(tmp_path):
    argv = [sys.executable, "-m", "agent", "enroll", "--server", "127.0.0.1:8300", "--token", "t"]
    argv += ["--state", str(tmp_path / "state.json")]

    completed = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)  # noqa: S603

    assert completed.returncode == EXIT_USAGE
    assert "Traceback" not in completed.stderr
    assert (
        completed.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "error: argument --server: '127.0.0.1:8300' is not a server URL. Use http://host[:port] or https://host[:port]."
        )
    )
    assert not (tmp_path / "state.json").exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda path: path.mkdir(parents=True), "is a directory"),
        (lambda path: path.parent.write_text("a file"), "is not a directory"),
    ],
)
def test_enroll_checks_the_state_path_before_enrolling(portal, state_path, setup, message, capsys):
    setup(state_path)

    assert main(["enroll", "--server", portal.url, "--token", TOKEN, "--state", str(state_path)]) == EXIT_USAGE

    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert portal.devices == {}


@pytest.mark.parametrize("command", ["run", "rotate-secret"])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ('{"device_id": "d"}', "is incomplete"),
        ('{"server_url": "127.0.0.1:8300", "device_id": "d", "device_secret": "s"}', "is not a server URL"),
    ],
)
def test_an_unusable_state_file_is_one_line(state_path, command, content, message, capsys):
    state_path.parent.mkdir(parents=True)
    state_path.write_text(content)

    assert main([command, "--state", str(state_path)]) == EXIT_FAILED

    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_state_with_a_bad_interval_uses_the_servers(portal, enrolled, state_path):
    data = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**data, "checkin_interval_seconds": "soon"}))

    assert load_state(state_path).checkin_interval_seconds is None
    assert main(["run", "--once", "--state", str(state_path)]) == EXIT_OK


def test_every_subcommand_and_option_has_help():
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for choice in commands._choices_actions:
        assert choice.help, choice.dest
    for name, subparser in commands.choices.items():
        assert subparser.description, name
        for action in subparser._actions:
            assert action.help, f"{name} {action.option_strings}"


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
