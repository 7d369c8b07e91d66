"""Policy is decided on the alias a request is finally sent to (issue 10, item 4): a key's
allowlist and `limits.models` reach through route rules, experiment variants (forced or
assigned) and fallbacks; forcing a variant needs `may_force_variant` or the admin key.
Real gateway, real fake upstream: a refused request never reaches it."""

from __future__ import annotations

import os
from collections.abc import Callable

import httpx
import pytest

from tests.servers import RunningServer
from tests.upstream import FakeUpstream

SMALL = os.environ.setdefault("POLICY_SMALL_KEY", "sk-policy-small-0123456789")
FORCER = os.environ.setdefault("POLICY_FORCER_KEY", "sk-policy-forcer-0123456789")
FULL = os.environ.setdefault("POLICY_FULL_KEY", "sk-policy-full-0123456789")
ADMIN = os.environ.setdefault("POLICY_ADMIN_KEY", "adm-policy-0123456789")


def policy_config(upstream_url: str) -> str:
    return f"""
providers:
  up: {{kind: openai, base_url: "{upstream_url}/v1", api_key: "${{UPSTREAM_KEY}}"}}
  broken: {{kind: mock, mock: {{fail_status: 503}}}}
models:
  chat: {{deployments: [{{provider: up, model: upstream-chat}}]}}
  big: {{deployments: [{{provider: up, model: upstream-big}}]}}
  flaky:
    deployments: [{{provider: broken, model: flaky-1}}]
    retry: {{attempts: 1}}
    fallbacks: [big, chat]
routes:
  auto:
    rules: [{{name: hard, when: {{headers: {{x-tier: big}}}}, target: big}}]
    default: chat
  assistant: {{default: chat}}
experiments:
  pricing:
    applies_to: chat
    variants:
      control: {{target: chat}}
      premium: {{target: big, weight: 0}}
  upgrade:
    applies_to: assistant
    variants:
      control: {{target: chat, weight: 0}}
      premium: {{target: big}}
auth:
  admin_key: ${{POLICY_ADMIN_KEY}}
  keys:
    - {{id: small, api_key: "${{POLICY_SMALL_KEY}}", models: [chat, auto, assistant, flaky]}}
    - {{id: forcer, api_key: "${{POLICY_FORCER_KEY}}", models: [chat], may_force_variant: true}}
    - {{id: full, api_key: "${{POLICY_FULL_KEY}}", may_force_variant: true}}
limits:
  failed_auth_ip: []
  models: {{big: {{requests: ["2/day"]}}}}  # a day: no window boundary inside a test
"""


@pytest.fixture
def gateway(
    start_gateway: Callable[[str], RunningServer],
    upstream_server: tuple[FakeUpstream, RunningServer],
    upstream: FakeUpstream,
) -> RunningServer:
    _, server = upstream_server
    return start_gateway(policy_config(server.url))


def chat(
    gateway: RunningServer, key: str, model: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    auth = {"authorization": f"Bearer {key}", **(headers or {})}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=auth, timeout=10)


def upstream_models(upstream: FakeUpstream) -> list[str]:
    return [r["model"] for r in upstream.requests]


@pytest.mark.parametrize(
    ("key", "model", "headers", "code"),
    [
        (SMALL, "chat", {"x-gateway-variant": "premium"}, "variant_not_allowed"),
        (SMALL, "chat", {"x-gateway-variant": "no-such"}, "variant_not_allowed"),
        (FORCER, "chat", {"x-gateway-variant": "premium"}, "model_not_allowed"),
        (SMALL, "auto", {"x-tier": "big"}, "model_not_allowed"),
        (SMALL, "assistant", {}, "model_not_allowed"),
    ],
    ids=["header-no-permission", "header-unknown-variant", "forced-target", "route", "experiment"],
)
def test_a_key_allowed_only_chat_cannot_reach_big(
    gateway: RunningServer,
    upstream: FakeUpstream,
    key: str,
    model: str,
    headers: dict[str, str],
    code: str,
) -> None:
    refused = chat(gateway, key, model, headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == code
    assert upstream.requests == []  # nothing was sent anywhere


@pytest.mark.parametrize(
    ("key", "model", "headers", "sent_to"),
    [
        (SMALL, "chat", {}, "upstream-chat"),
        (SMALL, "auto", {}, "upstream-chat"),
        (FULL, "chat", {"x-gateway-variant": "premium"}, "upstream-big"),
        (ADMIN, "chat", {"x-gateway-variant": "premium"}, "upstream-big"),
        (FULL, "auto", {"x-tier": "big"}, "upstream-big"),
        (FULL, "assistant", {}, "upstream-big"),
    ],
    ids=["plain", "route-default", "permitted-force", "admin-force", "route-big", "experiment"],
)
def test_allowed_targets_are_reached(
    gateway: RunningServer,
    upstream: FakeUpstream,
    key: str,
    model: str,
    headers: dict[str, str],
    sent_to: str,
) -> None:
    answer = chat(gateway, key, model, headers)
    assert answer.status_code == 200, answer.text
    assert upstream_models(upstream) == [sent_to]


def test_a_fallback_the_key_may_not_use_is_never_called(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    limited = chat(gateway, SMALL, "flaky")  # flaky fails; falls back past big to chat
    assert limited.status_code == 200, limited.text
    assert upstream_models(upstream) == ["upstream-chat"]
    upstream.reset()
    unlimited = chat(gateway, FULL, "flaky")
    assert unlimited.status_code == 200
    assert upstream_models(upstream) == ["upstream-big"]


@pytest.mark.parametrize(
    ("model", "headers"),
    [("auto", {"x-tier": "big"}), ("chat", {"x-gateway-variant": "premium"}), ("assistant", {})],
    ids=["route", "forced-variant", "experiment"],
)
def test_limits_of_big_apply_to_requests_sent_to_big(
    gateway: RunningServer, model: str, headers: dict[str, str]
) -> None:
    statuses = [chat(gateway, FULL, model, headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = chat(gateway, FULL, "big")
    assert refused.json()["error"]["code"] == "rate_limit_exceeded_model"
    assert chat(gateway, FULL, "chat").status_code == 200  # chat has no model limit
