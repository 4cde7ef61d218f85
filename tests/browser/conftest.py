"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against pytest-django's live server."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


JOURNEY_MODULE_PREFIX = "test_journey_"


def pytest_collection_modifyitems(config, items):
    if not os.path.exists(CHROMIUM):
        skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)
    _journeys_get_a_database_other_processes_can_open(items)


def _journeys_get_a_database_other_processes_can_open(items):
    """The journeys' worker and simulators are other processes: an in-memory SQLite database is invisible to them.

    On PostgreSQL nothing changes. On SQLite, when only browser tests were collected (``pytest tests/browser``,
    ``make screenshots``), the test database goes into a temporary file (pytest-django creates and deletes it);
    in a run of the whole suite it stays in memory, for speed, and ``journeys.shareable_database`` skips the
    journeys saying why.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if "sqlite" not in database["ENGINE"] or database.get("TEST", {}).get("NAME"):
        return
    browser_dir = Path(__file__).resolve().parent
    journeys = [item for item in items if item.path.name.startswith(JOURNEY_MODULE_PREFIX)]
    if journeys and all(browser_dir in item.path.parents for item in items):
        folder = Path(tempfile.mkdtemp(prefix="mdm-journeys-"))
        database.setdefault("TEST", {})["NAME"] = str(folder / "test.sqlite3")


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # around it are ordinary synchronous calls.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def journey_dir(tmp_path):
    """The folder of one journey's processes: broker folders, logs, simulator state."""
    return tmp_path


@pytest.fixture
def celery_worker(live_server, transactional_db, journey_dir, settings):
    """A real ``celery worker`` process on the test database; this process sends it tasks through a private broker.

    The suite's autouse fixture runs tasks eagerly in the test's process; here they go to the broker instead, in a
    file-system broker folder of this test only, which the worker (``MDM_VAR_DIR``) consumes.
    """
    from tests.browser import journeys

    reason = journeys.shareable_database()
    if reason:
        pytest.skip(reason)
    from mdm_portal.celery import app

    broker = journey_dir / "broker"
    folders = {name: broker / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    previous = (app.conf.task_always_eager, app.conf.broker_transport_options)
    app.conf.task_always_eager = False
    app.conf.broker_transport_options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }
    _forget_broker_connections(app)
    worker = journeys.start_worker(journey_dir)
    yield worker
    worker.stop()
    app.conf.task_always_eager, app.conf.broker_transport_options = previous
    _forget_broker_connections(app)


def _forget_broker_connections(app):
    """Connections made with the previous broker options are not reused with the new ones.

    kombu keeps connection and producer pools per broker URL, process-wide: closing only the app's
    pool would leave a producer pool bound to closed connections ("Acquire on closed pool" in the
    eager tests that run after the journeys).
    """
    import kombu.pools

    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def simulators(live_server, transactional_db, journey_dir):
    """Start simulator processes against the live server: ``simulators(name=..., token=... or code=..., ...)``."""
    from tests.browser import journeys

    reason = journeys.shareable_database()
    if reason:
        pytest.skip(reason)
    started = []

    def start(**options):
        process = journeys.start_simulator(journey_dir, live_server.url, **options)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
