"""Secure cookies and headers in production mode, the Content Security Policy, and
``manage.py check --deploy`` clean. Production settings are computed when the settings module is
imported, so those tests run a fresh Python with the production environment."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path, **extra) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        MDM_PRODUCTION="1",
        SECRET_KEY="x" * 20 + "-a-long-random-production-secret-key-for-tests-only-0123456789",
        ALLOWED_HOSTS="mdm.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        MDM_VAR_DIR=str(tmp_path / "var"),
        STATIC_ROOT=str(tmp_path / "static"),
        DJANGO_SETTINGS_MODULE="mdm_portal.settings",
        **extra,
    )
    return env


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings
# No collectstatic here: plain static storage instead of the production manifest.
storages = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
with override_settings(STORAGES=storages):
    client = Client(HTTP_HOST="mdm.example.com")
    plain = client.get("/portal/login/")
    secure = client.get("/portal/login/", secure=True)
print(json.dumps({
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location", ""),
    "headers": dict(secure.headers),
    "cookies": {name: {"secure": bool(c["secure"])} for name, c in secure.cookies.items()},
}))
"""


def test_production_headers_and_cookies(tmp_path):
    result = run_python(PROBE, production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["plain_status"] == 301, "plain HTTP is redirected to HTTPS"
    assert seen["plain_location"].startswith("https://mdm.example.com/")
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert seen["cookies"]["csrftoken"]["secure"] is True


def test_production_uses_redis_for_the_cache_when_redis_url_is_set(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    )
    with_redis = run_python(code, production_env(tmp_path, REDIS_URL="redis://localhost:6379/1"))
    assert with_redis.stdout.strip().endswith("django.core.cache.backends.redis.RedisCache"), with_redis.stderr
    env = production_env(tmp_path)
    env.pop("REDIS_URL", None)
    without = run_python(code, env)
    assert without.stdout.strip().endswith("django.core.cache.backends.locmem.LocMemCache"), without.stderr


def _csp(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


def _inline_scripts(html: str) -> list[str]:
    return [tag for tag in re.findall(r"<script\b[^>]*>", html) if "src=" not in tag]


@pytest.mark.django_db
def test_csp_header_on_portal_and_console_pages(client, people):
    login = client.get(reverse("portal:login"))
    directives = _csp(login)
    assert directives["default-src"] == "default-src 'self'"
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert directives["object-src"] == "object-src 'none'"
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert _inline_scripts(login.content.decode()) == []
    # Framing is refused by both headers, and the type sniffing and referrer headers are on in every mode.
    assert login["X-Frame-Options"] == "DENY"
    assert login["X-Content-Type-Options"] == "nosniff"
    assert login["Referrer-Policy"] == "same-origin"

    client.force_login(people.global_admin)
    console = client.get(reverse("admin:devices_device_changelist"))
    assert console.status_code == 200
    assert "frame-ancestors 'none'" in console["Content-Security-Policy"]
    assert _inline_scripts(console.content.decode()) == []


@pytest.mark.django_db
def test_an_inline_script_runs_only_with_the_response_nonce(client):
    from tests.factories import UserFactory

    UserFactory(username="emma")
    client.post(reverse("portal:login"), {"username": "emma", "password": PASSWORD})
    page = client.get(reverse("portal:enroll"))
    assert page.status_code == 200
    nonce = re.search(r"'nonce-([^']+)'", _csp(page)["script-src"]).group(1)
    inline = _inline_scripts(page.content.decode())
    assert inline, "the enrolment page has an inline script (its status poller)"
    assert all(f'nonce="{nonce}"' in tag for tag in inline)


def test_no_template_has_script_the_policy_would_block():
    """Inline scripts carry the nonce; no inline event handlers or ``javascript:`` URLs anywhere."""
    problems = []
    for template in sorted(ROOT.glob("**/templates/**/*.html")):
        if ".venv" in template.parts:
            continue
        html = template.read_text()
        name = template.relative_to(ROOT)
        problems += [f"{name}: {tag}" for tag in _inline_scripts(html) if "request.csp_nonce" not in tag]
        problems += [f"{name}: javascript: URL" for _ in re.findall(r"""=\s*["']javascript:""", html)]
        problems += [f"{name}: {m}" for m in re.findall(r"<[^>]*\son(?:click|load|change|submit|input)=", html)]
    assert problems == []


# Styles: no 'unsafe-inline' either. <style> blocks carry the nonce (or, better, live in a static sheet);
# style attributes cannot carry one, so there are none: classes from static/console/*.css instead.
STYLE_ATTRIBUTE = re.compile(r"""<[a-zA-Z][^>]*\sstyle\s*=\s*["']""")
WIDGET_STYLE = re.compile(r"""attrs=\{[^}]*["']style["']\s*:""")  # forms.TextInput(attrs={"style": ...})
# Mail is not a web page: no CSP applies, and mail clients want inline styles.
NOT_SERVED = ("email",)


def _inline_styles(html: str) -> list[str]:
    return re.findall(r"<style\b[^>]*>", html)


@pytest.mark.django_db
def test_csp_style_src_allows_no_inline_style(client, people):
    pages = [client.get(reverse("portal:login"))]
    client.force_login(people.global_admin)
    for name in ("admin:devices_device_changelist", "admin:policies_compliance_dashboard", "admin:retirement_report"):
        pages.append(client.get(reverse(name)))
    pages.append(client.get(reverse("admin:devices_device_change", args=[people.device_a.pk])))
    pages.append(client.get(reverse("api-docs")))
    for page in pages:
        assert page.status_code == 200
        style_src = _csp(page)["style-src"]
        assert style_src.startswith("style-src 'self'")
        assert "'unsafe-inline'" not in style_src
        assert "'unsafe-hashes'" not in style_src
        html = page.content.decode()
        assert STYLE_ATTRIBUTE.findall(html) == []
        nonce = re.search(r"'nonce-([^']+)'", style_src)
        assert all(nonce and f'nonce="{nonce.group(1)}"' in tag for tag in _inline_styles(html))


def test_no_template_or_admin_code_has_style_the_policy_would_block():
    """<style> blocks carry the nonce; no style attribute in a served template or in HTML built in Python."""
    problems = []
    for template in sorted(ROOT.glob("**/templates/**/*.html")):
        if ".venv" in template.parts or NOT_SERVED[0] in template.parts:
            continue
        html = template.read_text()
        name = template.relative_to(ROOT)
        problems += [f"{name}: {tag}" for tag in _inline_styles(html) if "request.csp_nonce" not in tag]
        problems += [f"{name}: {m}" for m in STYLE_ATTRIBUTE.findall(html)]
    for package in ("apps", "devices", "mdm_portal", "policies", "retirement"):
        for module in sorted((ROOT / package).glob("**/*.py")):
            problems += [f"{module.relative_to(ROOT)}: {m}" for m in STYLE_ATTRIBUTE.findall(module.read_text())]
            problems += [f"{module.relative_to(ROOT)}: {m}" for m in _inline_styles(module.read_text())]
            problems += [f"{module.relative_to(ROOT)}: {m}" for m in WIDGET_STYLE.findall(module.read_text())]
    assert problems == []


def test_state_colours_of_the_charts_match_the_cards_sheets():
    """The SVG charts take their colours from Python; the state cards (no style attribute) from the sheets."""
    from apps.admin.charts import STATE_COLOR
    from policies.dashboard_charts import STATE_STYLE

    dashboard = (ROOT / "static/console/dashboard.css").read_text()
    for state, (colour, _dash) in STATE_STYLE.items():
        assert f".state-card.state-{state} {{ --state-color: {colour}; }}" in dashboard
    apps = (ROOT / "static/console/apps.css").read_text()
    for state, colour in STATE_COLOR.items():
        assert f"#state-counts .state-card.state-{state} {{ --state-color: {colour}; }}" in apps
