"""The upstream HTTP client alone: aiohttp against gateway/upstream, side by side.

Both post the benchmark's chat completion to `mock_upstream.py` (started here on CPU 1)
from this process (pinned to CPU 0, uvloop), as the openai provider does: body bytes
out, the whole reply read, the connection released. Rounds alternate between the
clients; each figure is the median over rounds. CPU us/req is this process's CPU time
(user + system) per request, the steadiest figure on a shared machine.

    PYTHONPATH=. python benchmarks/bench_upstream_client.py [--seconds 3] [--rounds 3]
        [--concurrency 1,64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import uvloop
from common import Processes, format_table, mock_argv, wait_for_health

from gateway.upstream import HTTPClient, Timeouts

BODY = orjson.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}]})
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
Call = Callable[[], Awaitable[bytes]]


async def aiohttp_client(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(
        headers=HEADERS,
        connector=aiohttp.TCPConnector(limit=100, limit_per_host=0, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=None, connect=15, sock_connect=5, sock_read=600),
        skip_auto_headers=("user-agent",),
    )

    async def call() -> bytes:
        response = await session.post(url, data=BODY, allow_redirects=False)
        data = await response.read()
        response.release()
        return data

    return call, session.close


async def native_client(url: str) -> tuple[Call, Callable[[], Awaitable[None]]]:
    client = HTTPClient(timeouts=Timeouts(connect=5, read=600, pool=10), headers=HEADERS)

    async def call() -> bytes:
        response = await client.post(url, BODY)
        data = await response.read()
        response.release()
        return data

    return call, client.aclose


CLIENTS = {"aiohttp": aiohttp_client, "native": native_client}


async def measure(call: Call, concurrency: int, seconds: float) -> tuple[float, float]:
    """(requests per second, CPU us per request) over `seconds`."""
    count = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await call()
            count += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return count / wall, cpu / count * 1e6


async def run(url: str, concurrencies: list[int], seconds: float, rounds: int) -> list[list[str]]:
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for make in CLIENTS.values():  # warm up both (connections, code paths)
        call, close = await make(url)
        await measure(call, 64, 0.5)
        await close()
    for _ in range(rounds):
        for concurrency in concurrencies:
            for name, make in CLIENTS.items():
                call, close = await make(url)
                await measure(call, concurrency, 0.3)
                results.setdefault((name, concurrency), []).append(
                    await measure(call, concurrency, seconds)
                )
                await close()
    rows = []
    for concurrency in concurrencies:
        base = statistics.median(r for r, _ in results[("aiohttp", concurrency)])
        for name in CLIENTS:
            rps = statistics.median(r for r, _ in results[(name, concurrency)])
            cpu = statistics.median(c for _, c in results[(name, concurrency)])
            rows.append([name, str(concurrency), f"{rps:,.0f}", f"{cpu:.1f}", f"x{rps / base:.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,64")
    parser.add_argument("--port", type=int, default=9311)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    log_dir = Path(tempfile.mkdtemp(prefix="bench-upstream-client-"))
    with Processes(log_dir) as processes:
        wait_for_health(processes.start("mock", mock_argv(args.port), args.port, cpu=1))
        url = f"http://127.0.0.1:{args.port}/v1/chat/completions"
        concurrencies = [int(c) for c in args.concurrency.split(",")]
        rows = uvloop.run(run(url, concurrencies, args.seconds, args.rounds))
    print(f"load average: {os.getloadavg()}")
    print(format_table(["client", "conc.", "req/s", "CPU us/req", "vs aiohttp"], rows))


if __name__ == "__main__":
    main()
