"""Routes through a real gateway: the explaining header, the access log, the dry-run."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.servers import RunningServer

CONFIG = """
providers:
  mock: {kind: mock}
models:
  fast: {deployments: [{provider: mock, model: fast-1}]}
  smart:
    strategy: least_busy
    deployments: [{provider: mock, model: smart-1}, {provider: mock, model: smart-2}]
    fallbacks: [fast]
routes:
  auto:
    rules:
      - name: short-classification
        when: {max_prompt_tokens: 50, headers: {x-task: classification}}
        target: fast
    default: smart
"""
SHORT = [{"role": "user", "content": "positive or negative: great film"}]


@pytest.fixture
def gateway(start_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return start_gateway(CONFIG)


def test_route_header_names_route_rule_and_target(
    gateway: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        raw = sdk.chat.completions.with_raw_response.create(
            model="auto", messages=SHORT, extra_headers={"x-task": "classification"}
        )
        default = sdk.chat.completions.with_raw_response.create(model="auto", messages=SHORT)
    assert raw.headers["x-gateway-route"] == "auto -> fast (rule: short-classification)"
    assert raw.parse().model == "fast-1"
    assert default.headers["x-gateway-route"] == "auto -> smart (default)"
    logged = [r.__dict__.get("route") for r in caplog.records if r.name == "gateway.access"]
    assert "auto -> fast (rule: short-classification)" in logged
    assert "auto" in {m.id for m in sdk.models.list()}


def test_dry_run_returns_decision_without_calling_a_provider(gateway: RunningServer) -> None:
    answer = httpx.post(
        f"{gateway.url}/v1/route/dry-run",
        json={"model": "auto", "messages": SHORT},
        headers={"x-task": "classification"},
    )
    assert answer.status_code == 200
    decision = answer.json()
    assert decision["target"] == "fast"
    assert decision["route"]["reason"] == "rule: short-classification"
    assert decision["deployments"] == ["mock/fast-1"]
    other = httpx.post(f"{gateway.url}/v1/route/dry-run", json={"model": "auto", "messages": SHORT})
    assert other.json()["target"] == "smart"
    assert other.json()["strategy"] == "least_busy"
    assert other.json()["fallbacks"] == ["fast"]
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert "gateway_routing_decisions_total{" not in metrics  # a dry-run decides nothing
    assert "gateway_upstream_duration_seconds_count{" not in metrics  # and calls no provider


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "nope", "messages": SHORT}, 404, "model"),
        ({"model": "auto"}, 400, "messages"),
    ],
)
def test_dry_run_rejects_bad_requests(
    gateway: RunningServer, body: dict[str, object], status: int, param: str
) -> None:
    answer = httpx.post(f"{gateway.url}/v1/route/dry-run", json=body)
    assert answer.status_code == status
    assert answer.json()["error"]["param"] == param


def test_routing_decisions_are_counted(gateway: RunningServer) -> None:
    sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    sdk.chat.completions.create(model="auto", messages=SHORT)
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'gateway_routing_decisions_total{route="auto",target="smart"} 1.0' in metrics
