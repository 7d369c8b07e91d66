"""Every auth outcome, with its status, error code and headers (memory and Redis state)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from gateway.auth.authenticator import client_ip, presented_key
from tests.access.conftest import KEY_A, KEY_B, KEY_OLD, KEYS_YAML
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gateway(make_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_gateway("auth:" + KEYS_YAML + "limits: {failed_auth_ip: ['3/minute']}\n")


@pytest.mark.parametrize(
    ("headers", "model", "status", "code"),
    [
        ({}, "gpt-test", 401, "invalid_api_key"),
        ({"authorization": "Bearer nope"}, "gpt-test", 401, "invalid_api_key"),
        ({"authorization": f"Bearer {KEY_OLD}"}, "gpt-test", 401, "invalid_api_key"),
        ({"authorization": f"Bearer {KEY_A}"}, "gpt-test", 200, None),
        ({"authorization": f"bearer {KEY_A}"}, "gpt-test", 200, None),
        ({"x-api-key": KEY_A}, "gpt-test", 200, None),
        ({"api-key": KEY_A}, "gpt-test", 200, None),
        ({"authorization": "Bearer sk-test-from-env-0123456789"}, "gpt-test", 200, None),
        ({"authorization": f"Bearer {KEY_A}"}, "mock-small", 403, "model_not_allowed"),
        ({"authorization": f"Bearer {KEY_B}"}, "mock-small", 200, None),
    ],
    ids=[
        "missing",
        "unknown",
        "expired",
        "bearer",
        "bearer-lowercase",
        "x-api-key",
        "api-key",
        "env-reference",
        "model-not-allowed",
        "all-models",
    ],
)
def test_auth_outcomes(
    gateway: RunningServer, headers: dict[str, str], model: str, status: int, code: str | None
) -> None:
    reply = httpx.post(
        f"{gateway.url}/v1/chat/completions", json={**BODY, "model": model}, headers=headers
    )
    assert reply.status_code == status, reply.text
    if code is not None:
        error = reply.json()["error"]
        assert error["code"] == code
        assert error["type"] in {"authentication_error", "permission_error"}
    for secret in (KEY_A, KEY_B, KEY_OLD):
        assert secret not in reply.text


def test_client_key_is_never_forwarded_upstream(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {KEY_A}"},
    )
    assert KEY_A not in str(upstream.headers[-1])


def test_failed_attempts_per_ip_are_limited(gateway: RunningServer) -> None:
    url = f"{gateway.url}/v1/chat/completions"
    statuses = [
        httpx.post(url, json=BODY, headers={"x-api-key": f"guess-{i}"}).status_code
        for i in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    blocked = httpx.post(url, json=BODY, headers={"x-api-key": "guess-again"})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert blocked.json()["error"]["type"] == "rate_limit_error"
    # The block is for failed attempts only: a valid key from the same IP still works.
    assert httpx.post(url, json=BODY, headers={"x-api-key": KEY_A}).status_code == 200


def test_quickstart_without_keys_needs_no_key(make_gateway) -> None:  # type: ignore[no-untyped-def]
    gateway = make_gateway("")
    assert httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY).status_code == 200


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("10.0.0.5", "1.2.3.4", [], "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4", ["10.0.0.0/8"], "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9", ["10.0.0.0/8"], "1.2.3.4"),
        ("8.8.8.8", "1.2.3.4", ["10.0.0.0/8"], "8.8.8.8"),
        ("10.0.0.5", "not-an-ip", ["10.0.0.0/8"], "10.0.0.5"),
        ("10.0.0.5", None, ["10.0.0.0/8"], "10.0.0.5"),
    ],
    ids=["untrusted-peer-ignored", "trusted", "rightmost-untrusted", "spoof", "garbage", "none"],
)
def test_client_ip_believes_only_trusted_proxies(
    peer: str, forwarded: str | None, trusted: list[str], expected: str
) -> None:
    from ipaddress import ip_network

    assert client_ip(peer, forwarded, [ip_network(t) for t in trusted]) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "Basic abc"}, None),
        ({"x-api-key": "k"}, "k"),
        ({"api-key": "k"}, "k"),
        ({}, None),
    ],
)
def test_presented_key(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(headers) == expected
