"""The fault matrix against real local upstreams: for each way a provider fails, the
retries, the fallback and the status the client finally sees."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.servers import RunningServer, serve_in_thread
from tests.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "hello"}]


@dataclass
class Upstreams:
    bad: FakeUpstream
    good: FakeUpstream
    bad_url: str
    good_url: str
    closed_url: str


@contextmanager
def closed_port_url() -> Iterator[str]:
    """A port bound but never listened on: connections are refused, and no other test's
    server can take the port meanwhile (a closed socket's port was reused under load)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def servers() -> Iterator[Upstreams]:
    bad, good = FakeUpstream(), FakeUpstream()
    with (
        serve_in_thread(bad.app()) as bad_server,
        serve_in_thread(good.app()) as good_server,
        closed_port_url() as closed,
    ):
        yield Upstreams(bad, good, bad_server.url, good_server.url, closed)


@pytest.fixture
def upstreams(servers: Upstreams) -> Upstreams:
    servers.bad.reset()
    servers.good.reset()
    return servers


def config(up: Upstreams, *, breakers: str = "{failures: 100}") -> str:
    def provider(url: str) -> str:
        return (
            f"{{kind: openai, base_url: '{url}/v1', api_key: '${{UPSTREAM_KEY}}', "
            "timeout: {connect: 0.5, read: 3}}"
        )

    retry = "{attempts: 2, backoff_base_ms: 20, attempt_timeout_seconds: 0.5, deadline_seconds: 5}"
    return f"""
providers:
  bad: {provider(up.bad_url)}
  good: {provider(up.good_url)}
  dead: {provider(up.closed_url)}
models:
  primary: {{deployments: [{{provider: bad, model: p}}], retry: {retry}, fallbacks: [backup]}}
  refused: {{deployments: [{{provider: dead, model: d}}], retry: {retry}, fallbacks: [backup]}}
  lonely:
    deployments: [{{provider: bad, model: p}}, {{provider: dead, model: d}}]
    retry: {retry}
  pair:
    deployments: [{{provider: bad, model: p}}, {{provider: good, model: g}}]
    retry: {retry}
  backup: {{deployments: [{{provider: good, model: b}}]}}
breakers: {breakers}
"""


@pytest.fixture
def gateway(start_gateway: Callable[[str], RunningServer], upstreams: Upstreams) -> RunningServer:
    return start_gateway(config(upstreams))


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:  # one client: a new one per call costs ~0.2 s
        yield client


def chat(http: httpx.Client, gateway: RunningServer, model: str, **body: Any) -> httpx.Response:
    payload = {"model": model, "messages": MESSAGES, **body}
    return http.post(f"{gateway.url}/v1/chat/completions", json=payload)


@pytest.mark.parametrize(
    ("case", "model", "behaviour", "stream", "bad_calls", "final_model", "status"),
    [
        ("refused", "refused", {}, False, 0, "b", 200),
        ("hang past timeout", "primary", {"hang_seconds": 2}, False, 2, "b", 200),
        ("500", "primary", {"status": 500}, False, 2, "b", 200),
        (
            "429 with Retry-After",
            "primary",
            {"status": 429, "retry_after": "0.3"},
            False,
            2,
            "b",
            200,
        ),
        ("500 once, then fine", "primary", {"status": 500, "fail_times": 1}, False, 2, "p", 200),
        ("400 is not retried", "primary", {"status": 400}, False, 1, None, 400),
        ("stream cut before first byte", "primary", {"cut_after": 0}, True, 2, "b", 200),
        ("stream hangs before first byte", "primary", {"hang_seconds": 2}, True, 2, "b", 200),
        ("stream 503", "primary", {"status": 503}, True, 2, "b", 200),
    ],
)
def test_fault_matrix(
    gateway: RunningServer,
    http: httpx.Client,
    upstreams: Upstreams,
    case: str,
    model: str,
    behaviour: dict[str, Any],
    stream: bool,
    bad_calls: int,
    final_model: str | None,
    status: int,
) -> None:
    upstreams.bad.reset(**behaviour)
    started = time.monotonic()
    answer = chat(http, gateway, model, stream=stream)
    assert answer.status_code == status, answer.text
    assert len(upstreams.bad.requests) == bad_calls
    if final_model is None:
        assert answer.json()["error"]["message"] == "upstream exploded"
        assert upstreams.good.requests == []
        return
    served_by = '"model":"' + final_model + '"'
    assert served_by in answer.text.replace(" ", "")
    assert answer.text.count("[DONE]") == (1 if stream else 0)
    assert "error" not in answer.text
    if "retry_after" in behaviour:
        assert time.monotonic() - started >= 0.3  # waited as the upstream asked


def test_stream_cut_after_first_bytes_is_not_retried(
    gateway: RunningServer, http: httpx.Client, upstreams: Upstreams
) -> None:
    upstreams.bad.reset(cut_after=2, chunks=5)
    sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in sdk.chat.completions.create(model="primary", messages=MESSAGES, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["part0 ", "part1 "]  # the client kept what it had; no mixed answer
    assert len(upstreams.bad.requests) == 1
    assert upstreams.good.requests == []


def test_every_attempt_named_when_all_fail(
    gateway: RunningServer, http: httpx.Client, upstreams: Upstreams
) -> None:
    upstreams.bad.reset(status=500)
    answer = chat(http, gateway, "lonely")
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["message"].startswith("All 2 attempt(s) failed:")
    assert "bad/p: upstream exploded" in error["message"]
    assert "dead/d:" in error["message"]
    assert "127.0.0.1" not in error["message"]  # no upstream URLs leak


def test_retries_and_fallbacks_are_counted(
    gateway: RunningServer, http: httpx.Client, upstreams: Upstreams
) -> None:
    upstreams.bad.reset(status=500)
    assert chat(http, gateway, "primary").status_code == 200
    metrics = http.get(f"{gateway.url}/metrics").text
    assert 'gateway_retries_total{model="primary"} 1.0' in metrics
    assert 'gateway_fallbacks_total{fallback="backup",model="primary"} 1.0' in metrics


def test_open_breaker_skips_failing_deployment_while_healthy_one_serves(
    start_gateway: Callable[[str], RunningServer], http: httpx.Client, upstreams: Upstreams
) -> None:
    gateway = start_gateway(
        config(upstreams, breakers="{failures: 2, window_seconds: 30, cooldown_seconds: 60}")
    )
    upstreams.bad.reset(status=500)
    statuses = [chat(http, gateway, "pair").status_code for _ in range(30)]
    assert statuses == [200] * 30  # every request answered by the healthy deployment
    assert len(upstreams.bad.requests) == 2  # then the breaker opened and it was skipped
    ready = http.get(f"{gateway.url}/ready").json()
    deployments = ready["checks"]["deployments"]
    assert (deployments["bad/p"], deployments["good/g"]) == ("open", "closed")
    assert ready["status"] == "degraded"
    metrics = http.get(f"{gateway.url}/metrics").text
    assert 'gateway_breaker_state{deployment="bad/p"} 2.0' in metrics
