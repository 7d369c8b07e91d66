"""Access under attack (when this checkout has auth): admin endpoints refuse missing or
wrong keys, path tricks and wrong methods; failed authentications are limited per IP;
keys are stored as hashes, compared without a timing tell, and never echoed."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator

import httpx
import orjson
import pytest

from gateway.config.schema import GatewayConfig
from tests.hardening import rawserver as raw
from tests.hardening.clients import exchange
from tests.hardening.harness import (
    CHAT,
    MESSAGES,
    UPSTREAM_KEY,
    Gateway,
    assert_openai_error,
    capture_logs,
    gateway_yaml,
    running_gateway,
)

pytestmark = pytest.mark.skipif(
    "auth" not in GatewayConfig.model_fields, reason="no auth in this checkout yet"
)
ADMIN_KEY = os.environ.setdefault("HARD_ADMIN_KEY", "adm-hardening-0f9e8d7c6b5a")
CLIENT_KEY = os.environ.setdefault("HARD_CLIENT_KEY", "sk-gw-hardening-1a2b3c4d5e6f7a8b")
AUTH = """
auth:
  admin_key: ${HARD_ADMIN_KEY}
  keys:
    - {id: hard-client, api_key: '${HARD_CLIENT_KEY}'}
limits:
  failed_auth_ip: ["8/minute"]
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[raw.RawUpstream]:
    with raw.raw_upstream(raw.always_ok()) as server:
        yield server


@pytest.fixture
def gw(upstream: raw.RawUpstream) -> Iterator[Gateway]:
    """A fresh gateway per test: the failed-auth window starts empty."""
    with running_gateway(gateway_yaml(upstream.url, extra=AUTH)) as gateway:
        yield gateway


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def chat(gw: Gateway, headers: dict[str, str]) -> httpx.Response:
    body = {"model": "mock-small", "messages": MESSAGES}
    return httpx.post(gw.url + CHAT, json=body, headers=headers, timeout=5)


ADMIN_HEADERS = [
    pytest.param({}, id="none"),
    pytest.param(bearer("wrong"), id="wrong"),
    pytest.param(bearer(ADMIN_KEY[:-1]), id="prefix"),
    pytest.param(bearer(ADMIN_KEY + "x"), id="longer"),
    pytest.param(bearer(CLIENT_KEY), id="client-key"),
    pytest.param({"authorization": f"Basic {ADMIN_KEY}"}, id="basic"),
    pytest.param({"x-admin-key": ADMIN_KEY}, id="made-up-header"),
]


@pytest.mark.parametrize("headers", ADMIN_HEADERS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/keys"),
        ("POST", "/admin/keys"),
        ("POST", "/admin/reload"),
        ("DELETE", "/admin/keys/hard-client"),
        ("GET", "/admin/keys/hard-client/usage"),
        ("GET", "/admin/experiments/anything"),
    ],
)
def test_admin_refuses_missing_or_wrong_admin_keys(
    gw: Gateway, headers: dict[str, str], method: str, path: str
) -> None:
    response = httpx.request(method, gw.url + path, headers=headers, json={"id": "x"})
    error = assert_openai_error(response, (401, 403))
    assert ADMIN_KEY not in response.text and CLIENT_KEY not in response.text
    assert error["type"] in ("authentication_error", "permission_error")


ADMIN_PATH_TRICKS = [
    "/admin/keys/../keys",
    "/admin//keys",
    "/admin/keys/",
    "/ADMIN/keys",
    "/admin/%6beys",
    "/v1/../admin/keys",
    "/admin/keys/hard-client/../../keys",
    "/admin/keys/hard-client/usage/..%2f..%2f",
    "/admin/keys?admin_key=" + ADMIN_KEY,
]


@pytest.mark.parametrize("path", ADMIN_PATH_TRICKS)
def test_admin_path_tricks_never_reach_a_handler_without_the_key(gw: Gateway, path: str) -> None:
    request = f"GET {path} HTTP/1.1\r\nhost: g\r\nconnection: close\r\n\r\n".encode()
    status, _, body = exchange(gw.server.port, request)
    assert status in (400, 401, 403, 404, 405), (status, body[:200])
    assert b"sha256" not in body and b'"data"' not in body  # no key listing leaked


def test_no_redirect_points_at_a_host_the_client_named(gw: Gateway) -> None:
    request = (
        b"POST /v1/chat/completions/ HTTP/1.1\r\nhost: evil.example\r\n"
        b"content-length: 2\r\nconnection: close\r\n\r\n{}"
    )
    status, headers, _ = exchange(gw.server.port, request)
    assert "evil.example" not in headers.get("location", ""), (status, headers)


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/admin/keys"), ("PATCH", "/admin/keys"), ("GET", "/admin/reload")],
)
def test_admin_wrong_methods_are_405_in_openai_format(gw: Gateway, method: str, path: str) -> None:
    response = httpx.request(method, gw.url + path, headers=bearer(ADMIN_KEY))
    assert_openai_error(response, 405)


def test_keys_are_stored_as_hashes_and_a_created_key_is_shown_once(gw: Gateway) -> None:
    admin = bearer(ADMIN_KEY)
    created = httpx.post(gw.url + "/admin/keys", json={"id": "made-here"}, headers=admin)
    assert created.status_code in (200, 201), created.text
    new_key = next(v for v in _strings(created.json()) if len(v) >= 20 and v != "made-here")
    assert chat(gw, bearer(new_key)).status_code == 200
    listing = httpx.get(gw.url + "/admin/keys", headers=admin)
    assert listing.status_code == 200
    assert new_key not in listing.text and CLIENT_KEY not in listing.text
    stored = gw.run(_state_dump(gw))
    assert hashlib.sha256(new_key.encode()).hexdigest() in stored  # looked in the right place
    assert new_key not in stored and CLIENT_KEY not in stored


def _strings(obj: object) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


async def _state_dump(gw: Gateway) -> str:
    """Everything the memory state backend holds, as text (keys live there)."""
    assert gw.runtime.services is not None
    return repr(vars(gw.runtime.services.state))


def test_failed_authentications_are_limited_per_ip(gw: Gateway) -> None:
    statuses = [chat(gw, bearer(f"sk-guess-{i}")).status_code for i in range(12)]
    assert statuses[:8] == [401] * 8
    assert set(statuses[8:]) == {429}
    limited = chat(gw, bearer("sk-guess-again"))
    assert_openai_error(limited, 429)


def test_key_lookup_compares_only_hashes_so_a_matching_prefix_gains_nothing(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A presented key is hashed before anything is compared, and the store is indexed by
    digest: a key sharing all but its last character with the real one follows exactly the
    path of an unrelated key (no early exit on a prefix; proven structurally, not timed)."""
    from gateway.auth import keys as keys_module

    assert gw.runtime.services is not None and gw.runtime.services.authenticator is not None
    store = gw.runtime.services.authenticator.keys
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in store.static), "keys kept as sha256"
    hashed: list[str] = []
    real_digest = keys_module.digest
    monkeypatch.setattr(keys_module, "digest", lambda k: hashed.append(k) or real_digest(k))
    near = CLIENT_KEY[:-1] + ("0" if CLIENT_KEY[-1] != "0" else "1")
    far = "x" * len(CLIENT_KEY)
    assert gw.run(store.lookup(near)) is None
    assert gw.run(store.lookup(far)) is None
    assert hashed == [near, far]


def test_no_gateway_or_admin_key_in_logs_errors_metrics_or_headers(gw: Gateway) -> None:
    seen: list[str] = []
    with capture_logs() as logs:
        for headers in (bearer(CLIENT_KEY), bearer("wrong"), bearer(ADMIN_KEY), {}):
            for model in ("mock-small", "up", "nope"):
                body = {"model": model, "messages": MESSAGES}
                response = httpx.post(gw.url + CHAT, json=body, headers=headers)
                seen += [str(response.headers), response.text]
        for method, path in [("GET", "/admin/keys"), ("POST", "/admin/keys")]:
            for headers in (bearer(ADMIN_KEY), bearer(CLIENT_KEY), {}):
                response = httpx.request(method, gw.url + path, headers=headers, json={"id": "z9"})
                seen += [str(response.headers), response.text]
        seen.append(httpx.get(gw.url + "/metrics").text)
    everything = seen + logs.lines
    secrets = (CLIENT_KEY, ADMIN_KEY, UPSTREAM_KEY)
    leaks = [(s, t[:200]) for t in everything for s in secrets if s in t]
    assert not leaks
    assert any('"key_id"' in line or "hard-client" in line for line in logs.lines) or logs.lines
    assert orjson.loads(seen[1])  # the answers were real answers
