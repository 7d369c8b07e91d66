"""The admin API: guarded by the admin key; keys created on one instance work on every
instance sharing Redis within a second, and stop working within a second of revocation."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.access.conftest import ADMIN, KEYS_YAML, redis_state
from tests.servers import RunningServer

BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def pair(
    make_gateway: Callable[[str], RunningServer], redis_url: str, prefix: str
) -> tuple[RunningServer, RunningServer]:
    config = redis_state(redis_url, prefix) + "auth:" + KEYS_YAML
    return make_gateway(config), make_gateway(config)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/keys"),
        ("POST", "/admin/keys"),
        ("DELETE", "/admin/keys/x"),
        ("GET", "/admin/keys/team-a/usage"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong-admin-key"}])
def test_admin_requires_the_admin_key(
    pair: tuple[RunningServer, RunningServer], method: str, path: str, headers: dict[str, str]
) -> None:
    reply = httpx.request(method, f"{pair[0].url}{path}", headers=headers, json={})
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "invalid_admin_key"
    assert ADMIN not in reply.text and "wrong-admin-key" not in reply.text


def test_created_key_works_everywhere_then_revoked_everywhere(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    one, two = pair
    created = httpx.post(
        f"{one.url}/admin/keys",
        headers=ADMIN_AUTH,
        json={
            "id": "ci-bot",
            "team": "a",
            "models": ["gpt-test"],
            "limits": {"requests": ["5/minute"]},
        },
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("sk-gw-") and created.json()["id"] == "ci-bot"
    auth = {"authorization": f"Bearer {key}"}
    for gateway in (one, two):
        assert wait_for_status(gateway, auth, 200) == 200

    listed = httpx.get(f"{two.url}/admin/keys", headers=ADMIN_AUTH).json()["data"]
    assert {k["id"] for k in listed} >= {"team-a", "team-b", "old", "env", "ci-bot"}
    assert key not in str(listed) and "sha256" not in str(listed)

    assert httpx.delete(f"{two.url}/admin/keys/ci-bot", headers=ADMIN_AUTH).status_code == 200
    started = time.monotonic()
    for gateway in (one, two):
        assert wait_for_status(gateway, auth, 401) == 401
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("DELETE", "/admin/keys/team-a", None, 400, "key_in_config"),
        ("DELETE", "/admin/keys/nope", None, 404, "key_not_found"),
        ("GET", "/admin/keys/nope/usage", None, 404, "key_not_found"),
        ("POST", "/admin/keys", {"id": "team-a"}, 400, "key_exists"),
        ("POST", "/admin/keys", {"id": "bad id!"}, 400, None),
        ("POST", "/admin/keys", {"limits": {"requests": ["often"]}}, 400, None),
        ("POST", "/admin/keys", {"colour": "blue"}, 400, None),
    ],
    ids=[
        "config-key",
        "unknown",
        "usage-unknown",
        "duplicate",
        "bad-id",
        "bad-rate",
        "unknown-field",
    ],
)
def test_admin_errors(
    pair: tuple[RunningServer, RunningServer],
    method: str,
    path: str,
    body: dict | None,
    status: int,
    code: str | None,
) -> None:
    reply = httpx.request(method, f"{pair[0].url}{path}", headers=ADMIN_AUTH, json=body)
    assert reply.status_code == status, reply.text
    if code:
        assert reply.json()["error"]["code"] == code


def test_admin_api_is_disabled_without_admin_key(
    make_gateway: Callable[[str], RunningServer],
) -> None:
    gateway = make_gateway("")
    reply = httpx.get(f"{gateway.url}/admin/keys", headers=ADMIN_AUTH)
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "admin_disabled"


def wait_for_status(gateway: RunningServer, auth: dict[str, str], status: int) -> int:
    deadline = time.monotonic() + 2.0
    while True:
        got = httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=auth).status_code
        if got == status or time.monotonic() > deadline:
            return got
        time.sleep(0.05)
