"""Prometheus metrics after real requests: labels, several workers, promtool."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway_process import gateway_process
from tests.servers import RunningServer

MESSAGES = [{"role": "user", "content": "Say hello"}]
MOCK_CONFIG = """
providers:
  mock: {kind: mock, mock: {chunks: 3}}
models:
  mock-small:
    deployments: [{provider: mock, model: mock-small}]
"""


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return sum(v for got, v in found.get(name, []) if labels.items() <= got.items())


def promtool_problems(exposition: str) -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("GATEWAY_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is required here (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool is not installed (CI installs Debian's prometheus package)")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    return result.stdout + result.stderr if result.returncode else ""


def drive(base_url: str, model: str, count: int) -> None:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="k", max_retries=0)
    for i in range(count):
        if i % 2:
            list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))
        else:
            client.chat.completions.create(model=model, messages=MESSAGES)


def test_metrics_carry_bounded_labels_after_real_requests(gateway: RunningServer) -> None:
    drive(gateway.url, "gpt-test", 4)
    httpx.post(
        f"{gateway.url}/v1/chat/completions", json={"model": "no-such", "messages": MESSAGES}
    )
    text = httpx.get(f"{gateway.url}/metrics").text
    found = samples(text)
    ok = {"endpoint": "chat", "model": "gpt-test", "status_class": "2xx"}
    assert value(found, "gateway_requests_total", **ok) == 4
    assert value(found, "gateway_requests_total", model="unknown", status_class="4xx") == 1
    assert value(found, "gateway_request_duration_seconds_count", model="gpt-test") == 4
    assert value(found, "gateway_time_to_first_token_seconds_count", model="gpt-test") == 2
    assert value(found, "gateway_tokens_total", model="gpt-test", direction="input") > 0
    assert value(found, "gateway_upstream_duration_seconds_count", provider="up") == 4
    assert value(found, "gateway_overhead_seconds_count", endpoint="chat") == 5
    assert value(found, "gateway_in_flight_requests") == 0
    assert "gateway_config_last_success_timestamp_seconds" in found
    assert "no-such" not in text  # a client cannot mint label values


def test_exposition_passes_promtool(gateway: RunningServer) -> None:
    drive(gateway.url, "gpt-test", 2)
    assert promtool_problems(httpx.get(f"{gateway.url}/metrics").text) == ""


def test_two_workers_report_merged_counts_and_pass_promtool(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(MOCK_CONFIG)
    with gateway_process(config, workers=2) as gw:
        drive(gw.url, "mock-small", 20)
        # Each scrape lands on either worker; every one must see both workers' counts.
        for _ in range(6):
            text = httpx.get(f"{gw.url}/metrics", headers={"connection": "close"}).text
            found = samples(text)
            assert value(found, "gateway_requests_total", model="mock-small") == 20
            assert value(found, "gateway_in_flight_requests") == 0
        assert promtool_problems(text) == ""
