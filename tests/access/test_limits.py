"""Request and token limits in one gateway: exact counts, OpenAI's 429 and headers,
token reservations settled to real usage (cut streams included), memory and Redis."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from gateway.accounting.tokens import count_prompt_tokens
from gateway.ratelimit.headers import duration
from tests.access.conftest import KEY_A, KEYS_YAML, redis_state
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "hi"}]
BODY = {"model": "gpt-test", "messages": MESSAGES}
AUTH = {"authorization": f"Bearer {KEY_A}"}


def state_yaml(backend: str, redis_url: str, prefix: str) -> str:
    return redis_state(redis_url, prefix) if backend == "redis" else ""


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_request_limit_is_exact_with_headers(
    make_gateway: Callable[[str], RunningServer], backend: str, redis_url: str, prefix: str
) -> None:
    gateway = make_gateway(
        state_yaml(backend, redis_url, prefix)
        + "auth:"
        + KEYS_YAML
        + "limits: {default_key: {requests: ['3/minute', '100/day']}}\n"
    )
    replies = [
        httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=AUTH) for _ in range(4)
    ]
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in replies[:3]] == ["2", "1", "0"]
    assert all(r.headers["x-ratelimit-limit-requests"] == "3" for r in replies)
    refused = replies[3]
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded_key"
    assert "3 requests per minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")


def test_token_reservation_settles_to_real_usage(
    make_gateway: Callable[[str], RunningServer],
    upstream: FakeUpstream,
    backend: str,
    redis_url: str,
    prefix: str,
) -> None:
    # A day window: a sliding window weighs the last period's count by the time left in it,
    # so a minute boundary crossed during these two seconds moved the expected counts.
    gateway = make_gateway(
        state_yaml(backend, redis_url, prefix)
        + "auth:"
        + KEYS_YAML
        + "limits: {default_key: {tokens: ['10000/day']}}\n"
    )
    url = f"{gateway.url}/v1/chat/completions"
    body = {**BODY, "max_tokens": 100}
    estimate = count_prompt_tokens(body, "chat") + 100
    first = httpx.post(url, json=body, headers=AUTH)
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 10000 - estimate
    time.sleep(0.3)  # settlements go out in batches every 20 ms: ample, even under load
    second = httpx.post(url, json=body, headers=AUTH)  # the first settled to its usage, 11
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == 10000 - 11 - estimate
    time.sleep(0.3)

    # A stream cut after one chunk settles with the relay's estimate: prompt + chars/4.
    upstream.reset(cut_after=1)
    with httpx.stream("POST", url, json={**body, "stream": True}, headers=AUTH) as cut:
        cut.read()
    time.sleep(0.4)
    third = httpx.post(url, json=body, headers=AUTH)
    cut_usage = count_prompt_tokens(body, "chat") + 2  # "part0 " is 6 chars
    expected = 10000 - 11 - 11 - cut_usage - estimate
    assert int(third.headers["x-ratelimit-remaining-tokens"]) == expected


def test_token_limit_refuses_what_would_not_fit(
    make_gateway: Callable[[str], RunningServer], upstream: FakeUpstream
) -> None:
    gateway = make_gateway("auth:" + KEYS_YAML + "limits: {default_key: {tokens: ['50/minute']}}\n")
    reply = httpx.post(
        f"{gateway.url}/v1/chat/completions", json={**BODY, "max_tokens": 100}, headers=AUTH
    )
    assert reply.status_code == 429
    assert reply.json()["error"]["code"] == "rate_limit_exceeded_key"
    assert reply.headers["x-ratelimit-limit-tokens"] == "50"
    assert upstream.requests == []


def test_model_and_global_scopes(make_gateway: Callable[[str], RunningServer]) -> None:
    gateway = make_gateway(
        "auth:"
        + KEYS_YAML
        + "limits: {models: {gpt-test: {requests: ['1/day']}},"
        + " global: {requests: ['2/day']}}\n"
    )
    url = f"{gateway.url}/v1/chat/completions"
    other = {**BODY, "model": "mock-small"}
    key_b = {"authorization": "Bearer sk-test-team-b-0123456789"}
    statuses = [
        httpx.post(url, json=BODY, headers=AUTH).status_code,  # model 1/1, global 1/2
        httpx.post(url, json=BODY, headers=AUTH).status_code,  # model scope full
        httpx.post(url, json=other, headers=key_b).status_code,  # global 2/2
        httpx.post(url, json=other, headers=key_b).status_code,  # global full
    ]
    assert statuses == [200, 429, 200, 429]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.2, "1s"), (59, "59s"), (60, "1m0s"), (3725, "1h2m5s"), (-3, "0s")]
)
def test_reset_header_uses_openai_duration_format(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_ip_limit_applies_before_keys_and_trusts_only_configured_proxies(
    make_gateway: Callable[[str], RunningServer],
) -> None:
    gateway = make_gateway(
        "auth:"
        + KEYS_YAML
        + "limits: {ip: {requests: ['2/minute']}, trusted_proxies: ['127.0.0.1/32']}\n"
    )
    url = f"{gateway.url}/v1/chat/completions"

    def status(client_ip: str, headers: dict[str, str]) -> int:
        sent = {**headers, "x-forwarded-for": client_ip}
        return httpx.post(url, json=BODY, headers=sent).status_code

    # Unauthenticated traffic is counted too: the third request from 1.1.1.1 is refused
    # before its (valid) key is looked at; another client behind the proxy is not.
    assert [status("1.1.1.1", {}), status("1.1.1.1", AUTH)] == [401, 200]
    refused = httpx.post(url, json=BODY, headers={**AUTH, "x-forwarded-for": "1.1.1.1"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded_ip"
    assert status("2.2.2.2", AUTH) == 200
