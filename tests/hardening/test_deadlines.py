"""Streams end at their deadline, and a client that leaves cuts its upstream call within
a second in every mode (issue 10, item 14). Real upstreams that never end or never answer;
each test asserts the upstream saw its connection closed."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from tests.hardening import rawserver as raw
from tests.hardening.clients import post_bytes
from tests.hardening.harness import (
    CHAT,
    MESSAGES,
    capture_logs,
    gateway_yaml,
    running_gateway,
    shared_client,
    still_serves,
    wait_until,
)

STREAM_DEADLINE = 1.0


def deadline_yaml(upstream_url: str) -> str:
    """`up` with a 1 s stream deadline and a 30 s read timeout (the deadline must win)."""
    text = gateway_yaml(upstream_url, read=30, connect=5)
    once = "model: upstream-model}], retry: {attempts: 1"
    assert once in text
    return text.replace(once, f"{once}, stream_deadline_seconds: {STREAM_DEADLINE}")


@pytest.mark.parametrize(
    "scenario",
    [raw.endless_stream(256), raw.sse_reply([raw.sse_chunk(0)], then="stall")],
    ids=["never-ending", "stalls-after-first-event"],
)
def test_a_stream_ends_at_its_deadline_with_an_error_event_and_done(scenario: raw.Scenario) -> None:
    with raw.raw_upstream(scenario) as upstream, running_gateway(deadline_yaml(upstream.url)) as gw:
        body = {"model": "up", "messages": MESSAGES, "stream": True}
        started = time.monotonic()
        with shared_client().stream("POST", gw.url + CHAT, json=body, timeout=40) as response:
            assert response.status_code == 200
            lines = [line for line in response.iter_lines() if line]
        took = time.monotonic() - started
        assert lines[-1] == "data: [DONE]"
        error = orjson.loads(lines[-2].removeprefix("data: "))["error"]
        assert error["code"] == "stream_deadline_exceeded" and error["type"] == "timeout"
        assert upstream.wait_for_connections(0, timeout=1.0) == 0
        print(f"\nstream with a {STREAM_DEADLINE:g} s deadline ended after {took:.2f} s")
        assert took < STREAM_DEADLINE + 5
        still_serves(gw.url)


async def leave_after(port: int, request: bytes, seconds: float) -> float:
    """Send the request, wait `seconds` (the upstream has not answered), then hang up."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    await asyncio.sleep(seconds)
    writer.close()
    return time.monotonic()


def litellm_yaml(upstream_url: str) -> str:
    """`up` served through the litellm adapter (OpenAI family) instead of the native one."""
    return f"""
providers:
  up:
    kind: litellm
    litellm_provider: openai
    base_url: {upstream_url}/v1
    api_key: ${{UPSTREAM_KEY}}
    timeout: {{connect: 5, read: 30}}
  mock: {{kind: mock}}
models:
  up: {{deployments: [{{provider: up, model: upstream-model}}], retry: {{attempts: 1}}}}
  mock-small: {{deployments: [{{provider: mock, model: mock-small}}]}}
"""


@pytest.mark.parametrize(
    ("adapter", "stream", "as_served"),
    [
        ("openai", False, False),
        ("openai", False, True),
        ("openai", True, False),
        ("openai", True, True),
        ("litellm", False, False),
    ],
    ids=[
        "non-stream",
        "non-stream-as-served",
        "stream-before-first-event",
        "stream-before-first-event-as-served",
        "litellm-non-stream",
    ],
)
def test_a_client_that_leaves_cuts_its_upstream_call_within_a_second(
    adapter: str, stream: bool, as_served: bool
) -> None:
    """As served, the connection tells the request it lost its client (no task waits on
    `receive()`); on plain uvicorn a task does: both cut the call."""
    clients = 20
    request = post_bytes(CHAT, {"model": "up", "messages": MESSAGES, "stream": stream})
    yaml = deadline_yaml if adapter == "openai" else litellm_yaml
    with (
        raw.raw_upstream(raw.stall_before_headers()) as upstream,
        running_gateway(yaml(upstream.url), as_served=as_served) as gw,
        capture_logs() as logs,
    ):

        async def crowd() -> list[float]:
            calls = [leave_after(gw.server.port, request, 0.3) for _ in range(clients)]
            return await asyncio.gather(*calls)

        last_left = max(asyncio.run(crowd()))
        assert wait_until(lambda: upstream.accepted == clients)
        assert upstream.wait_for_connections(0, timeout=1.5) == 0
        cut_after = max(upstream.closed_at) - last_left
        print(
            f"\n{clients} clients left: every upstream call closed {cut_after * 1000:.0f} ms later"
        )
        assert cut_after < 1.0
        assert wait_until(lambda: gw.metric("gateway_requests_total", model="up") == clients)
        access = [orjson.loads(line) for line in logs.access_lines()]
        statuses = {entry["status"] for entry in access if entry["model"] == "up"}
        assert statuses == {499}, statuses
        assert gw.metric("gateway_in_flight_requests") == 0
        assert gw.metric("gateway_upstream_errors_total") == 0  # not the provider's failure
        still_serves(gw.url)
