"""SIGTERM on a real `gateway serve`: unready at once, open streams finish, nothing hangs."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import orjson

from tests.gateway_process import GatewayProcess, gateway_process

STREAMS = 100
# uvicorn re-raises the signal it handled once shutdown is done, so -SIGTERM is a clean end.
CLEAN_EXIT = (0, -signal.SIGTERM)


def config(chunks: int, delay_ms: int, grace: float, unready: float) -> str:
    return f"""
server: {{shutdown_grace_seconds: {grace}, unready_seconds: {unready}}}
providers:
  slow:
    kind: mock
    mock: {{mode: fixed, text: {"word " * chunks}, chunks: {chunks}, chunk_delay_ms: {delay_ms}}}
models:
  slow: {{deployments: [{{provider: slow, model: slow}}]}}
"""


async def open_stream(client: httpx.AsyncClient, started: asyncio.Event, opened: list[int]) -> str:
    """Read one stream to its end; 'done' ([DONE] seen), 'error' (an error event), or 'cut'."""
    body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    outcome = "cut"
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                opened.append(1)
                if len(opened) >= STREAMS:
                    started.set()
                data = line.removeprefix("data: ")
                if data == "[DONE]":
                    return "error" if outcome == "error" else "done"
                if "error" in orjson.loads(data):
                    outcome = "error"
    except httpx.HTTPError:
        return "cut"
    return outcome


async def streams_through_sigterm(gw: GatewayProcess) -> tuple[list[str], float, int]:
    limits = httpx.Limits(max_connections=STREAMS + 10)
    async with httpx.AsyncClient(base_url=gw.url, limits=limits, timeout=30) as client:
        started = asyncio.Event()
        opened: list[int] = []
        tasks = [asyncio.create_task(open_stream(client, started, opened)) for _ in range(STREAMS)]
        await asyncio.wait_for(started.wait(), 20)  # every stream has sent its first chunk
        gw.signal(signal.SIGTERM)
        signalled = time.monotonic()
        await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=gw.url) as fresh:
            try:
                ready = (await fresh.get("/ready")).status_code
            except (httpx.ConnectError, httpx.RemoteProtocolError):
                ready = 0  # the port is already closed
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    gw.process.wait(30)
    return outcomes, time.monotonic() - signalled, ready


def test_sigterm_lets_100_open_streams_finish(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(config(chunks=12, delay_ms=200, grace=10, unready=1.5))
    with gateway_process(path) as gw:
        outcomes, took, ready = asyncio.run(streams_through_sigterm(gw))
    assert ready == 503  # unready while still accepting, so balancers drain first
    assert outcomes.count("done") == STREAMS
    assert took < 10
    assert gw.process.returncode in CLEAN_EXIT
    assert '"signal"' in gw.logs()


def test_sigterm_ends_streams_longer_than_the_grace_period(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(config(chunks=100, delay_ms=200, grace=1, unready=0))
    with gateway_process(path) as gw:
        outcomes, took, ready = asyncio.run(streams_through_sigterm(gw))
    assert ready in (0, 503)
    # Each ended the documented way (an error event, then [DONE]) before the server's cut.
    assert outcomes == ["error"] * STREAMS
    assert took < 1 + 3
    assert gw.process.returncode in CLEAN_EXIT
