"""A worker knows every task the code enqueues or the beat schedule names."""

import ast
from pathlib import Path

from mdm_portal.celery import app
from mdm_portal.schedules import SCHEDULES

ROOT = Path(__file__).resolve().parents[2]


def registered() -> set[str]:
    app.loader.import_default_modules()  # what a worker does at start
    return set(app.tasks)


def shared_task_names() -> set[str]:
    """``module.function`` of every ``@shared_task`` in the project's own code."""
    names = set()
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts or "agent" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                for decorator in node.decorator_list:
                    target = decorator.func if isinstance(decorator, ast.Call) else decorator
                    if getattr(target, "id", None) == "shared_task":
                        names.add(f"{module}.{node.name}")
    return names


def test_every_shared_task_is_registered_with_the_worker():
    defined = shared_task_names()
    assert "devices.tasks.commands_expire" in defined  # the scan itself works
    missing = {name for name in defined if name not in registered() and not _renamed(name)}
    assert not missing, f"Not imported by any tasks.py, so a worker rejects them: {sorted(missing)}"


def _renamed(name: str) -> bool:
    # A task may carry an explicit name=...; then the function path is not its name.
    module, function = name.rsplit(".", 1)
    return any(task.__module__ == module and task.__name__ == function for task in app.tasks.values())


def test_every_scheduled_task_exists():
    tasks = registered()
    for schedule in SCHEDULES:
        assert schedule.task in tasks, schedule.name
