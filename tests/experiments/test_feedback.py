"""Experiments through a real gateway: headers, counters, feedback and the report (HTTP
and CLI), and an offline replay through two variants."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.cli import main
from tests.servers import RunningServer

CONFIG = """
providers:
  mock: {kind: mock, mock: {prompt_tokens: 10, completion_tokens: 5}}
  fixed: {kind: mock, mock: {mode: fixed, text: '{"label": "positive"}'}}
models:
  fast: {deployments: [{provider: mock, model: fast-1}]}
  smart: {deployments: [{provider: fixed, model: smart-1}]}
routes:
  auto: {default: fast}
experiments:
  tone:
    applies_to: auto
    variants:
      control: {target: auto}
      brief: {target: smart, system_prompt: "Be brief.", params: {temperature: 0}}
auth:
  admin_key: ${ADMIN_KEY}
  keys:
    - {id: tester, api_key: "${CLIENT_KEY}", may_force_variant: true}
    - {id: other, api_key: "${OTHER_KEY}", may_force_variant: true}
pricing:
  fast-1: {input_per_mtok: 1000, output_per_mtok: 2000}
"""
MESSAGES = [{"role": "user", "content": "classify: what a great film"}]
CLIENT_KEY = "client-key-456789"
AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}


@pytest.fixture
def gateway(
    start_gateway: Callable[[str], RunningServer], monkeypatch: pytest.MonkeyPatch
) -> RunningServer:
    monkeypatch.setenv("ADMIN_KEY", "admin-secret-123")
    monkeypatch.setenv("CLIENT_KEY", CLIENT_KEY)
    monkeypatch.setenv("OTHER_KEY", "other-key-987654")
    return start_gateway(CONFIG)


def chat(gateway: RunningServer, variant: str, request_id: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "auto", "messages": MESSAGES},
        headers={"x-gateway-variant": variant, "x-request-id": request_id, **AUTH},
    )


def feedback(
    gateway: RunningServer, body: dict[str, object], headers: dict[str, str] = AUTH
) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/feedback", json=body, headers=headers)


def report(gateway: RunningServer) -> httpx.Response:
    return httpx.get(
        f"{gateway.url}/admin/experiments/tone",
        headers={"authorization": "Bearer admin-secret-123"},
    )


def test_feedback_aggregates_per_variant_in_the_report(
    gateway: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = {"control": ["accepted"] * 2 + ["rejected"] * 2, "brief": ["accepted"] * 4}
    for variant, results in outcomes.items():
        for i, outcome in enumerate(results):
            answer = chat(gateway, variant, f"{variant}-{i}")
            assert answer.headers["x-gateway-experiment"] == f"tone={variant}"
            body = {"request_id": f"{variant}-{i}", "outcome": outcome, "score": i}
            assert feedback(gateway, body).json()["variant"] == variant
    result = report(gateway).json()
    by_variant = {v["variant"]: v for v in result["variants"]}
    control, brief = by_variant["control"], by_variant["brief"]
    assert (control["requests"], control["acceptance_rate"], control["control"]) == (4, 0.5, True)
    assert control["feedback"] == {"accepted": 2, "rejected": 2, "corrected": 0}
    assert control["prompt_tokens"] == 40 and control["cost"] == pytest.approx(0.08)
    assert control["mean_score"] == 1.5
    assert control["latency_p50_s"] is not None
    assert (brief["requests"], brief["acceptance_rate"]) == (4, 1.0)
    assert brief["vs_control"]["z"] > 0

    assert main(["experiments", "report", "tone", "--url", gateway.url, "--admin-key",
                 "admin-secret-123"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "control (control)" in printed and "50.0%" in printed and "100.0%" in printed
    metrics = httpx.get(f"{gateway.url}/metrics").text
    requests = 'experiment_requests_total{experiment="tone",status_class="2xx",variant="brief"}'
    accepted = 'experiment_feedback_total{experiment="tone",outcome="accepted",variant="brief"}'
    assert f"gateway_{requests} 4.0" in metrics
    assert f"gateway_{accepted} 4.0" in metrics


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"request_id": "never-seen", "outcome": "accepted"}, 404, "request_id"),
        ({"request_id": "x", "outcome": "loved"}, 400, "outcome"),
        ({"request_id": "x", "score": "high"}, 400, "score"),
        ({"outcome": "accepted"}, 400, "request_id"),
        ({"request_id": "x"}, 400, None),
    ],
)
def test_bad_feedback_gets_clear_error(
    gateway: RunningServer, body: dict[str, object], status: int, param: str | None
) -> None:
    answer = feedback(gateway, body)
    assert answer.status_code == status
    assert answer.json()["error"]["param"] == param


def test_feedback_needs_the_key_that_made_the_request(gateway: RunningServer) -> None:
    chat(gateway, "brief", "owned-1")
    body = {"request_id": "owned-1", "outcome": "accepted"}
    assert feedback(gateway, body, headers={}).status_code == 401
    other = {"authorization": "Bearer other-key-987654"}  # a valid key, but not the caller's
    assert feedback(gateway, body, headers=other).status_code == 404
    assert feedback(gateway, body).status_code == 200


def test_report_needs_admin_key_and_known_experiment(gateway: RunningServer) -> None:
    assert httpx.get(f"{gateway.url}/admin/experiments/tone").status_code == 401
    unknown = httpx.get(
        f"{gateway.url}/admin/experiments/nope",
        headers={"authorization": "Bearer admin-secret-123"},
    )
    assert unknown.status_code == 404


def test_unknown_forced_variant_is_a_400(gateway: RunningServer) -> None:
    answer = chat(gateway, "nope", "r-1")
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "x-gateway-variant"


def test_replay_compares_two_variants(
    gateway: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenarios = tmp_path / "scenarios.jsonl"
    lines = [
        {"messages": MESSAGES, "check": {"json": True}},
        {"messages": MESSAGES, "check": {"contains": "positive"}},
    ]
    scenarios.write_text("\n".join(json.dumps(line) for line in lines))
    assert main(["eval", "replay", str(scenarios), "--variants", "fast,smart",
                 "--url", gateway.url, "--api-key", CLIENT_KEY]) == 0  # fmt: skip
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "0/2 (0%)" in rows["fast"]  # echoes the prompt: neither JSON nor "positive"
    assert "2/2 (100%)" in rows["smart"]
