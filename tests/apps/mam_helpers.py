"""What the managed-app (MAM) tests share: a catalog app, a protection policy for a user group, and
requests to ``/mam/v1/`` as an app would send them."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from apps.models import App, AppProtectionAssignment, AppProtectionPolicy
from mdm_portal.core import services as core_services
from tests.factories import PASSWORD, SYSTEM

OUTLOOK_IOS = "com.microsoft.Office.Outlook"
TEAMS_IOS = "com.microsoft.skype.teams"


def catalog_app(identifier: str = OUTLOOK_IOS, platform: str = "ios", name: str = "Outlook", scope=None) -> App:
    return App.objects.create(name=name, kind="store", platform=platform, identifier=identifier, scope=scope)


def user_group(name: str, members) -> object:
    return core_services.user_group_save(actor=SYSTEM, name=name, members=list(members))


def protection_policy(name: str, apps, include=(), exclude=(), platform: str = "ios", scope=None, **settings):
    policy = AppProtectionPolicy.objects.create(name=name, platform=platform, scope=scope, **settings)
    policy.apps.set(apps)
    for group in include:
        AppProtectionAssignment.objects.create(policy=policy, user_group=group)
    for group in exclude:
        AppProtectionAssignment.objects.create(policy=policy, user_group=group, exclude=True)
    return policy


def post_json(client, url: str, body, authorization: str | None = None, **extra):
    if authorization is not None:
        extra["HTTP_AUTHORIZATION"] = authorization
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(url, data=data, content_type=extra.pop("content_type", "application/json"), **extra)


def sign_in(client, username: str, password: str = PASSWORD, **extra):
    form = urlencode({"grant_type": "password", "username": username, "password": password})
    return client.post("/mam/v1/token", form, content_type="application/x-www-form-urlencoded", **extra)


def access_token(client, username: str, password: str = PASSWORD) -> str:
    response = sign_in(client, username, password)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def register(client, token: str, app_identifier: str = OUTLOOK_IOS, **overrides):
    body = {
        "app_identifier": app_identifier,
        "platform": "ios",
        "device_name": "Emma's iPhone",
        "os_version": "18.1",
        "app_version": "4.2544.1",
        **overrides,
    }
    return post_json(client, "/mam/v1/register", body, f"Bearer {token}")


def registered(client, username: str, app_identifier: str = OUTLOOK_IOS, **overrides) -> dict:
    response = register(client, access_token(client, username), app_identifier, **overrides)
    assert response.status_code == 201, response.content
    return response.json()


def checkin(client, secret: str, body=None):
    return post_json(client, "/mam/v1/checkin", {} if body is None else body, f"Instance {secret}")


def confirm(client, secret: str, wipe_id: str):
    return post_json(client, f"/mam/v1/wipes/{wipe_id}/confirm", {}, f"Instance {secret}")
