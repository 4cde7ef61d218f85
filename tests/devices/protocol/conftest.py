import pytest

from agent.client import AgentClient
from devices.services.enrollment import enrollment_profile_create
from tests.factories import SYSTEM, StaffFactory


@pytest.fixture
def enrollment_manager(db):
    return StaffFactory(username="enrolment-manager")


@pytest.fixture
def profile_and_token(db, scope_a, enrollment_manager):
    return enrollment_profile_create(
        actor=SYSTEM, name="Warehouse scanners", enrollment_manager=enrollment_manager, scope=scope_a, capacity=50
    )


@pytest.fixture
def token(profile_and_token):
    return profile_and_token[1]


@pytest.fixture
def agent(live_server):
    """The real agent client, talking HTTP to the live server."""
    clients = []

    def make(secret=None):
        client = AgentClient(live_server.url, secret=secret)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def identity(**overrides):
    data = {
        "platform": "android",
        "name": "SCANNER-01",
        "serial_number": "R58N12345AB",
        "imei": "356938035643809",
        "model": "Galaxy XCover7",
        "manufacturer": "Samsung",
        "os_version": "14",
    }
    data.update(overrides)
    return data


def inventory(**overrides):
    data = {
        "os_version": "14",
        "encrypted": True,
        "passcode_set": True,
        "passcode_quality": "numeric",
        "passcode_length": 6,
        "jailbroken": False,
        "free_storage_mb": 51200,
        "total_storage_mb": 131072,
        "battery_percent": 81,
        "installed_apps": [{"identifier": "com.microsoft.teams", "name": "Teams", "version": "1416/1.0.0"}],
    }
    data.update(overrides)
    return data
