"""Slow readers: the gateway must not buffer an endless stream for them (backpressure
reaches the upstream), and other clients keep getting fast answers meanwhile."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import httpx

from tests.hardening import rawserver as raw
from tests.hardening.clients import post_bytes, slow_reader
from tests.hardening.harness import CHAT, MESSAGES, gateway_before, still_serves

SLOW_CLIENTS = 5
SLOW_SECONDS = 2.0
MB = 1024 * 1024


async def timed_requests(base_url: str, seconds: float) -> list[float]:
    """Latencies of small non-stream requests sent one after another for `seconds`."""
    latencies: list[float] = []
    body = {"model": "mock-small", "messages": MESSAGES}
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=5) as client:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await client.post(base_url + CHAT, json=body)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200
            await asyncio.sleep(0.05)
    return latencies


def rss_bytes() -> int:
    """This process's resident memory (the gateway runs in it, in a thread)."""
    status = Path("/proc/self/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
        * 1024
    )


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def test_slow_readers_get_backpressure_and_others_stay_fast() -> None:
    # The upstream writes 8 KB events as fast as the gateway takes them, for ever.
    with gateway_before(raw.endless_stream(8192), read=10) as (upstream, gw):
        still_serves(gw.url)
        alone = asyncio.run(timed_requests(gw.url, 1.0))  # this machine's figure, right now
        rss_before = rss_bytes()
        request = post_bytes(CHAT, {"model": "up", "messages": MESSAGES, "stream": True})

        async def scenario() -> tuple[list[int], list[float]]:
            slow = [
                slow_reader(gw.server.port, request, seconds=SLOW_SECONDS)
                for _ in range(SLOW_CLIENTS)
            ]
            *received, latencies = await asyncio.gather(*slow, timed_requests(gw.url, SLOW_SECONDS))
            return received, latencies

        received, during = asyncio.run(scenario())
        rss_growth = rss_bytes() - rss_before
        produced = upstream.bytes_sent
        print(
            f"\n{SLOW_CLIENTS} slow readers took {sum(received) / 1024:.0f} KB in "
            f"{SLOW_SECONDS} s while the upstream pushed {produced / MB:.1f} MB; RSS growth "
            f"{rss_growth / MB:.1f} MB; other clients p50/p90 alone "
            f"{statistics.median(alone) * 1000:.1f}/{p90(alone) * 1000:.1f} ms, beside "
            f"the slow readers {statistics.median(during) * 1000:.1f}/{p90(during) * 1000:.1f} ms"
        )
        # What the upstream wrote and the readers did not take sits in kernel socket
        # buffers (autotuned to tens of MB on loopback), not in the gateway's memory.
        assert produced > 10 * MB  # the upstream really did push hard
        assert rss_growth < min(64 * MB, produced / 2)
        assert statistics.median(during) < max(0.05, 3 * statistics.median(alone))
        assert p90(during) < max(0.25, 5 * p90(alone))
        still_serves(gw.url)
    assert upstream.wait_for_connections(0, timeout=2.0) == 0
