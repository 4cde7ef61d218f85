"""The Linux executor: nothing on the host changes without --allow-changes; every command gets a result."""

import pytest

from agent.executor import CommandExecutor


class FakeHost:
    """Records what would have been run; ``tools`` are the installed executables."""

    def __init__(self, tools=("hostnamectl", "loginctl"), status=0, output=""):
        self.tools = set(tools)
        self.status, self.output = status, output
        self.ran: list[list[str]] = []

    def which(self, name):
        return f"/usr/bin/{name}" if name in self.tools else None

    def run(self, argv):
        self.ran.append(argv)
        return self.status, self.output


def executor(host, *, allow_changes):
    return CommandExecutor(allow_changes=allow_changes, which=host.which, run=host.run)


@pytest.mark.parametrize("allow_changes", [False, True])
def test_sync_is_acknowledged_and_asks_for_a_check_in(allow_changes):
    host = FakeHost()
    agent = executor(host, allow_changes=allow_changes)

    result = agent.execute({"id": "c1", "type": "sync", "payload": {}})

    assert result == {"id": "c1", "status": "acknowledged", "data": {}}
    assert agent.sync_requested is True
    assert host.ran == []


def test_rename_without_allow_changes_says_what_it_would_do_and_changes_nothing():
    host = FakeHost()

    result = executor(host, allow_changes=False).execute({"id": "c1", "type": "rename", "payload": {"name": "web-07"}})

    assert result["status"] == "error"
    assert "--allow-changes" in result["error"] and "hostnamectl set-hostname web-07" in result["error"]
    assert host.ran == []


def test_rename_with_allow_changes_runs_hostnamectl():
    host = FakeHost()

    result = executor(host, allow_changes=True).execute(
        {"id": "c1", "type": "rename", "payload": {"name": "Emma's ThinkPad"}}
    )

    assert result == {"id": "c1", "status": "acknowledged", "data": {}}
    assert host.ran == [["/usr/bin/hostnamectl", "set-hostname", "Emma's ThinkPad"]]  # an argv, never a shell line


def test_rename_reports_hostnamectl_failing_or_missing():
    failing = FakeHost(status=1, output="Could not set static hostname: Access denied")
    result = executor(failing, allow_changes=True).execute({"id": "c1", "type": "rename", "payload": {"name": "x"}})
    assert result["status"] == "error" and "Access denied" in result["error"]

    missing = FakeHost(tools=())
    result = executor(missing, allow_changes=True).execute({"id": "c2", "type": "rename", "payload": {"name": "x"}})
    assert result == {
        "id": "c2",
        "status": "error",
        "error": "Renaming is not supported on this host: hostnamectl is not installed.",
    }


@pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": 7}, {"name": "bad\nname"}, {"name": "x" * 300}])
def test_rename_refuses_a_missing_or_invalid_name(payload):
    host = FakeHost()

    result = executor(host, allow_changes=True).execute({"id": "c1", "type": "rename", "payload": payload})

    assert result["status"] == "error"
    assert host.ran == []


def test_lock_without_allow_changes_is_not_supported():
    host = FakeHost()

    result = executor(host, allow_changes=False).execute({"id": "c1", "type": "lock", "payload": {"message": "Hi"}})

    assert result["status"] == "error" and "not supported" in result["error"]
    assert host.ran == []


def test_lock_without_loginctl_is_not_supported():
    result = executor(FakeHost(tools=()), allow_changes=True).execute({"id": "c1", "type": "lock", "payload": {}})

    assert result["status"] == "error"
    assert result["error"] == "Locking is not supported on this host: loginctl is not installed."


def test_lock_with_allow_changes_locks_every_session():
    host = FakeHost()

    result = executor(host, allow_changes=True).execute({"id": "c1", "type": "lock", "payload": {}})

    assert result["status"] == "acknowledged"
    assert host.ran == [["/usr/bin/loginctl", "lock-sessions"]]


@pytest.mark.parametrize("kind", ["restart", "reset_passcode", "enable_lost_mode", None])
def test_anything_else_is_an_error_sentence(kind):
    host = FakeHost()

    result = executor(host, allow_changes=True).execute({"id": "c1", "type": kind, "payload": {}})

    assert result == {"id": "c1", "status": "error", "error": f"This agent cannot run '{kind}' on Linux."}
    assert host.ran == []


def test_a_command_that_crashes_is_reported_as_an_error():
    def broken(argv):
        raise RuntimeError("boom")

    agent = CommandExecutor(allow_changes=True, which=FakeHost().which, run=broken)

    result = agent.execute({"id": "c1", "type": "lock", "payload": {}})

    assert result["status"] == "error" and "boom" in result["error"]


def test_execute_all_keeps_the_servers_order_and_skips_commands_without_an_id():
    agent = executor(FakeHost(), allow_changes=False)

    results = agent.execute_all(
        [
            {"id": "c1", "type": "lock", "payload": {}},
            {"type": "sync", "payload": {}},
            "not a command",
            {"id": "c2", "type": "sync", "payload": {}},
            {"id": "c3", "type": "rename", "payload": "not an object"},
        ]
    )

    assert [(r["id"], r["status"]) for r in results] == [("c1", "error"), ("c2", "acknowledged"), ("c3", "error")]
