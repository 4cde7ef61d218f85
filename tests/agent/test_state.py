"""The persisted enrolment: private file, atomic writes, readable errors."""

import stat

import pytest

from agent.state import AgentState, StateError, default_state_path, delete_state, load_state, save_state

STATE = AgentState(
    server_url="https://mdm.example.com", device_id="6f1c", device_secret="dsk_secret", checkin_interval_seconds=900
)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_saved_state_is_private_and_loads_back(tmp_path):
    path = tmp_path / "mdm-agent" / "state.json"

    assert save_state(STATE, path) == path

    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert load_state(path) == STATE
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_saving_again_replaces_the_state(tmp_path):
    path = tmp_path / "state.json"
    save_state(STATE, path)

    save_state(AgentState(STATE.server_url, STATE.device_id, "dsk_rotated"), path)

    assert load_state(path).device_secret == "dsk_rotated"
    assert mode(path) == 0o600


def test_a_loosened_state_file_is_tightened_when_read(tmp_path):
    path = tmp_path / "state.json"
    save_state(STATE, path)
    path.chmod(0o644)

    load_state(path)

    assert mode(path) == 0o600


def test_the_secret_is_never_in_the_repr():
    assert "dsk_secret" not in repr(STATE)


def test_no_state_file_means_not_enrolled(tmp_path):
    assert load_state(tmp_path / "missing.json") is None
    assert delete_state(tmp_path / "missing.json") is False


def test_delete_state(tmp_path):
    path = tmp_path / "state.json"
    save_state(STATE, path)

    assert delete_state(path) is True
    assert not path.exists()


@pytest.mark.parametrize(
    "text", ["not json", "[]", '{"server_url": "x"}', '{"server_url": "x", "device_id": "y", "device_secret": 3}']
)
def test_a_broken_state_file_says_what_to_do(tmp_path, text):
    path = tmp_path / "state.json"
    path.write_text(text)

    with pytest.raises(StateError, match="enrol again"):
        load_state(path)


def test_the_default_path_follows_xdg_and_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv("MDM_AGENT_STATE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_state_path() == tmp_path / "mdm-agent" / "state.json"

    monkeypatch.setenv("MDM_AGENT_STATE", str(tmp_path / "elsewhere.json"))
    assert default_state_path() == tmp_path / "elsewhere.json"
