"""/access/check: the decision per device state, who may ask, and a real nginx in front of it."""

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devices.choices import ComplianceState, LifecycleState
from devices.services import device_compliance_set
from mdm_portal.core import services as core_services
from mdm_portal.core.models import Role
from tests.factories import SYSTEM, DeviceFactory, StaffFactory, grant
from tests.matrix import covers

URL = "/access/check"


@pytest.fixture
def gate_token(db):
    account = StaffFactory(username="mail-gate", is_staff=False)
    role = core_services.role_save(
        actor=SYSTEM, name="Access gate", permissions=[_permission("devices", "check_device_access")]
    )
    grant(account, role.name)
    return core_services.api_token_create(actor=SYSTEM, user=account, name="webmail gate")[1]


def _permission(app, codename):
    from django.contrib.auth.models import Permission

    return Permission.objects.get(content_type__app_label=app, codename=codename)


def ask(client, token, **headers):
    return client.get(URL, HTTP_AUTHORIZATION=f"Bearer {token}", **{f"HTTP_{k}": v for k, v in headers.items()})


@pytest.mark.django_db
@covers("access:check")
def test_decisions_follow_device_state(client, gate_token, scope_a):
    device = DeviceFactory(scope=scope_a)
    device_compliance_set(actor=SYSTEM, device=device, state=ComplianceState.COMPLIANT)
    allowed = ask(client, gate_token, X_MDM_DEVICE_ID=str(device.uuid))
    assert allowed.status_code == 200
    assert allowed.json()["decision"] == "allow"

    device_compliance_set(actor=SYSTEM, device=device, state=ComplianceState.NONCOMPLIANT)
    refused = ask(client, gate_token, X_MDM_DEVICE_ID=str(device.uuid))
    assert refused.status_code == 403
    assert refused["X-MDM-Redirect"].endswith(f"/portal/devices/{device.uuid}/")
    assert "how to fix it" in refused.json()["reason"]

    by_serial = ask(client, gate_token, X_MDM_DEVICE_SERIAL=device.serial_number.lower())
    assert by_serial.status_code == 403


@pytest.mark.django_db
@covers("access:check")
@pytest.mark.parametrize(
    "header", [{}, {"X_MDM_DEVICE_ID": "not-a-uuid"}, {"X_MDM_DEVICE_ID": "6f1c0c1e-8a3e-4a4b-9a53-1c1d4f0f5e11"}]
)
def test_unknown_devices_are_sent_to_enrol(client, gate_token, header):
    response = ask(client, gate_token, **header)
    assert response.status_code == 401
    assert "/portal/" in response["X-MDM-Redirect"]
    assert response.json()["decision"] == "enrol"


@pytest.mark.django_db
@covers("access:check")
@pytest.mark.parametrize("state", [LifecycleState.PENDING, LifecycleState.RETIRED])
def test_unenrolled_devices_are_sent_to_enrol(client, gate_token, scope_a, state):
    device = DeviceFactory(scope=scope_a, state=state)
    response = ask(client, gate_token, X_MDM_DEVICE_ID=str(device.uuid))
    assert response.status_code == 401
    assert response.json()["decision"] == "enrol"


@pytest.mark.django_db
@covers("access:check")
@pytest.mark.parametrize("caller", ["anonymous", "forged token", "employee", "helpdesk scoped", "read-only"])
def test_only_gate_accounts_may_ask(client, people, caller):
    headers = {"HTTP_X_MDM_DEVICE_ID": str(people.device_a.uuid)}
    if caller == "forged token":
        headers["HTTP_AUTHORIZATION"] = "Bearer mdm_000000000000_forged"
    elif caller != "anonymous":
        user = {"employee": people.employee, "helpdesk scoped": people.helpdesk_a, "read-only": people.read_only}[
            caller
        ]
        client.force_login(user)
    response = client.get(URL, **headers)
    assert response.status_code in (401, 403)
    assert "X-MDM-Redirect" not in response  # a refused gate is never told to redirect people


@pytest.mark.django_db
@covers("access:check")
def test_global_administrator_may_ask(client, people, settings):
    settings.MDM_ACCESS_ALLOW_NOT_EVALUATED = True  # device_a has reported no inventory yet
    client.force_login(people.global_admin)
    assert client.get(URL, HTTP_X_MDM_DEVICE_ID=str(people.device_a.uuid)).status_code == 200
    assert Role.objects.get(name="Global administrator").permissions.filter(codename="check_device_access").exists()


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nginx_gate(tmp_path, live_server, gate_token):
    """A real nginx on loopback guarding a resource with auth_request to the live portal."""
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    port = _free_port()
    upstream = live_server.url.removeprefix("http://")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("webmail inbox")
    conf = tmp_path / "nginx.conf"
    # As root, nginx's workers would run as "nobody" and could not read pytest's private tmp dir.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fcgi; uwsgi_temp_path {tmp_path}/uwsgi; scgi_temp_path {tmp_path}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {tmp_path}/www;
        location / {{
            auth_request /_mdm_access;
            auth_request_set $mdm_redirect $upstream_http_x_mdm_redirect;
            error_page 401 = @mdm_enrol;
            error_page 403 = @mdm_remediate;
        }}
        location = /_mdm_access {{
            internal;
            proxy_pass http://{upstream}/access/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Host {upstream};
            proxy_set_header Authorization "Bearer {gate_token}";
            # Test only: the device id comes from a header; in production, from the client certificate.
            proxy_set_header X-MDM-Device-Id $http_x_test_device;
        }}
        location @mdm_enrol {{ if ($mdm_redirect = "") {{ return 503; }} return 302 $mdm_redirect; }}
        location @mdm_remediate {{ if ($mdm_redirect = "") {{ return 503; }} return 302 $mdm_redirect; }}
    }}
}}
""")
    process = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf)], stderr=subprocess.PIPE)  # noqa: S603
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    process.terminate()
    process.wait(timeout=10)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url, device=None):
    request = urllib.request.Request(url, headers={"X-Test-Device": str(device)} if device else {})  # noqa: S310
    opener = urllib.request.build_opener(NoRedirect)
    try:
        response = opener.open(request, timeout=10)
        return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace"), error.headers


@pytest.mark.django_db(transaction=True)
def test_nginx_auth_request_in_front_of_the_portal(nginx_gate, scope_a):
    compliant = DeviceFactory(scope=scope_a)
    device_compliance_set(actor=SYSTEM, device=compliant, state=ComplianceState.COMPLIANT)
    broken = DeviceFactory(scope=scope_a)
    device_compliance_set(actor=SYSTEM, device=broken, state=ComplianceState.NONCOMPLIANT)

    assert fetch(nginx_gate, compliant.uuid)[:2] == (200, "webmail inbox")

    status, _, headers = fetch(nginx_gate, broken.uuid)
    assert status == 302
    assert headers["Location"].endswith(f"/portal/devices/{broken.uuid}/")

    status, _, headers = fetch(nginx_gate)
    assert status == 302
    assert "/portal/" in headers["Location"]
