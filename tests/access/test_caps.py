"""Token caps (default, clamp, reject), the input limit and budgets."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from gateway.accounting.caps import effective_caps
from gateway.accounting.pricing import PriceBook
from gateway.auth.keys import hash_key
from gateway.config.access import CapsConfig, CapsSection
from gateway.pipeline.caps import CLAMP_HEADER
from tests.access.conftest import ADMIN, redis_state
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

KEY = "sk-test-caps-0123456789"
KEY_REJECT = "sk-test-caps-reject-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}
BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
CAPS_YAML = f"""
auth:
  admin_key: ${{TEST_ADMIN_KEY}}
  keys:
    - {{id: capped, hash: "{hash_key(KEY)}", team: t1}}
    - {{id: strict, hash: "{hash_key(KEY_REJECT)}", caps: {{on_exceed: reject, max_tokens: 50}}}}
  teams:
    t1: {{budget: {{tokens_per_day: 250}}}}
caps:
  models:
    gpt-test: {{default_max_tokens: 64, max_tokens: 200, max_input_tokens: 40}}
"""


@pytest.fixture
def gateway(make_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_gateway(CAPS_YAML)


def chat(gateway: RunningServer, body: dict, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers)


@pytest.mark.parametrize(
    ("extra", "sent", "clamped"),
    [
        ({}, {"max_tokens": 64}, None),
        ({"max_tokens": 150}, {"max_tokens": 150}, None),
        ({"max_tokens": 900}, {"max_tokens": 200}, "900->200"),
        ({"max_completion_tokens": 900}, {"max_completion_tokens": 200}, "900->200"),
    ],
    ids=["default-applied", "under-ceiling", "clamped", "clamped-new-field"],
)
def test_max_tokens_default_and_clamp(
    gateway: RunningServer, upstream: FakeUpstream, extra: dict, sent: dict, clamped: str | None
) -> None:
    reply = chat(gateway, {**BODY, **extra}, AUTH)
    assert reply.status_code == 200, reply.text
    for name, value in sent.items():
        assert upstream.requests[-1][name] == value
    assert reply.headers.get(CLAMP_HEADER) == clamped


def test_reject_names_the_limit(gateway: RunningServer, upstream: FakeUpstream) -> None:
    reply = chat(gateway, {**BODY, "max_tokens": 60}, {"x-api-key": KEY_REJECT})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "max_tokens" and error["code"] == "max_tokens_exceeded"
    assert "50" in error["message"]
    assert upstream.requests == []


def test_input_limit_refused_before_upstream(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    long = {**BODY, "messages": [{"role": "user", "content": "word " * 100}]}
    reply = chat(gateway, long, AUTH)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert "max_input_tokens" in error["message"] and "40" in error["message"]
    assert upstream.requests == []


def test_team_budget_exhaustion_and_usage(
    make_gateway: Callable[[str], RunningServer],
    upstream: FakeUpstream,
    redis_url: str,
    prefix: str,
) -> None:
    gateway = make_gateway(redis_state(redis_url, prefix) + CAPS_YAML)
    body = {**BODY, "max_tokens": 200}  # reserves 8 prompt + 200 output tokens
    statuses = []
    for _ in range(5):  # each reply uses 11 tokens; the team may use 250 a day
        statuses.append(chat(gateway, body, AUTH).status_code)
        time.sleep(0.05)  # the settlement runs when the reply completes
    # The fifth's reservation (44 spent + 208) does not fit: refused before the call.
    assert statuses == [200, 200, 200, 200, 429]
    refused = chat(gateway, body, AUTH)
    assert refused.json()["error"]["code"] == "insufficient_quota"
    assert refused.json()["error"]["type"] == "insufficient_quota"
    usage = httpx.get(
        f"{gateway.url}/admin/keys/capped/usage", headers={"authorization": f"Bearer {ADMIN}"}
    ).json()
    assert usage["usage"]["day"]["tokens"] == 44 and usage["usage"]["day"]["requests"] == 4
    assert usage["team"]["usage"]["month"]["tokens"] == 44
    assert len(upstream.requests) == 4
    assert chat(gateway, {**BODY, "max_tokens": 100}, AUTH).status_code == 200  # 152 fits


@pytest.mark.parametrize(
    ("model", "key", "expected"),
    [
        (
            CapsConfig(max_tokens=100),
            CapsConfig(),
            CapsConfig(max_tokens=100, on_exceed="clamp", max_choices=8),
        ),
        (
            CapsConfig(max_tokens=100, default_max_tokens=80),
            CapsConfig(max_tokens=50, on_exceed="reject"),
            CapsConfig(max_tokens=50, default_max_tokens=50, on_exceed="reject", max_choices=8),
        ),
        (
            CapsConfig(max_input_tokens=10),
            CapsConfig(max_input_tokens=20, default_max_tokens=5),
            CapsConfig(max_input_tokens=10, default_max_tokens=5, on_exceed="clamp", max_choices=8),
        ),
        (
            CapsConfig(max_output_tokens=500, max_choices=4),
            CapsConfig(max_output_tokens=200, max_choices=16),
            CapsConfig(on_exceed="clamp", max_output_tokens=200, max_choices=4),
        ),
    ],
    ids=["model-only", "key-tighter", "lowest-input-limit", "output-and-choices"],
)
def test_effective_caps_merge(model: CapsConfig, key: CapsConfig, expected: CapsConfig) -> None:
    section = CapsSection(models={"m": model})
    assert effective_caps(section, "m", key) == expected


def test_prices_come_from_bundled_map_and_overrides() -> None:
    from gateway.accounting.pricing import Price

    book = PriceBook({"cheap": Price(0.0, 1e-6)})
    assert book.cost("alias", "gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert book.cost("alias", "openai/gpt-4o-mini", 0, 1_000_000) == pytest.approx(0.6)
    assert book.cost("cheap", "gpt-4o-mini", 5, 2) == pytest.approx(2e-6)
    assert book.cost("alias", "no-such-model", 100, 100) == 0.0
