"""Soak one gateway worker with mixed traffic and check it neither leaks nor fails.

Starts the fast mock upstream (benchmarks/mock_upstream.py) and one worker of
`python -m gateway serve`, then sends --requests requests (default 100,000) at
--concurrency, mixing: non-stream and stream chat through the OpenAI-compatible provider,
cache hits (when this checkout has the cache), 429s and provider 500s from mock
providers told to fail, connection refused, streams broken mid-way, invalid bodies, and
clients that leave mid-stream. Every kind has a planned outcome; anything else is an
error. The first 10% of requests warm the worker up; then it checks

  resident memory (RSS, /proc) at the end grew < 10% over the warmed-up figure,
  open file descriptors (/proc/<pid>/fd) return to the warmed-up count once idle,
  no unplanned outcome,

prints the figures, and exits 1 if a promise is broken.

    .venv/bin/python benchmarks/soak.py [--requests 100000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from benchmarks.common import (  # noqa: E402
    Processes,
    free_port,
    gateway_argv,
    mock_argv,
    rss_bytes,
    wait_for_health,
    write_config,
)
from gateway.config.schema import GatewayConfig, ModelConfig  # noqa: E402

MESSAGES = [{"role": "user", "content": "hi"}]
CACHED_PROMPTS = [f"cached question {i}" for i in range(20)]


def soak_config(upstream_port: int, dead_port: int, port: int) -> dict:
    def model(provider: str) -> dict:
        entry: dict = {"deployments": [{"provider": provider, "model": "m"}]}
        if "retry" in ModelConfig.model_fields:  # one attempt: each planned fault shows
            entry["retry"] = {"attempts": 1}
        return entry

    def failing(**mock: object) -> dict:
        return {"kind": "mock", "mock": {"chunks": 5, **mock}}

    def openai(port_: int) -> dict:
        return {
            "kind": "openai",
            "base_url": f"http://127.0.0.1:{port_}/v1",
            "api_key": "${SOAK_UPSTREAM_KEY:-sk-soak}",
            "max_connections": 1000,
        }

    config: dict = {
        "server": {"host": "127.0.0.1", "port": port},
        "logging": {"level": "warning", "access_log": False},
        "providers": {
            "upstream": openai(upstream_port),
            "dead": openai(dead_port),
            "mock": failing(),
            "ratelimited": failing(fail_status=429, fail_message="slow down"),
            "broken": failing(fail_status=500),
            "cut": failing(mode="fixed", text="one two three four five six", fail_after_chunks=2),
        },
        "models": {name: model(name) for name in ("upstream", "dead", "mock", "cut")},
    }
    config["models"]["ratelimited"] = model("ratelimited")
    config["models"]["broken"] = model("broken")
    if "breakers" in GatewayConfig.model_fields:
        config["breakers"] = {"enabled": False}  # failing on purpose is the plan here
    if "cache" in GatewayConfig.model_fields:
        config["cache"] = {"enabled": True}
    return config


@dataclass
class Outcomes:
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)
    cache_hits: int = 0

    def planned(self, kind: str) -> None:
        self.counts[kind] += 1

    def unplanned(self, kind: str, detail: str) -> None:
        self.counts[f"{kind}: UNPLANNED"] += 1
        if len(self.errors) < 20:
            self.errors.append(f"{kind}: {detail[:300]}")


Check = Callable[[aiohttp.ClientSession, str, Outcomes], Awaitable[None]]


async def post(session: aiohttp.ClientSession, url: str, body: dict) -> tuple[int, str, dict]:
    async with session.post(url, json=body) as response:
        return response.status, await response.text(), dict(response.headers)


def expect(kind: str, body: dict, status: int, marker: str) -> Check:
    async def check(session: aiohttp.ClientSession, url: str, out: Outcomes) -> None:
        got, text, _ = await post(session, url, body)
        if got == status and marker in text:
            out.planned(kind)
        else:
            out.unplanned(kind, f"{got} {text}")

    return check


def stream_expect(kind: str, model: str, *, error: bool) -> Check:
    body = {"model": model, "messages": MESSAGES, "stream": True}

    async def check(session: aiohttp.ClientSession, url: str, out: Outcomes) -> None:
        got, text, _ = await post(session, url, body)
        ended = text.rstrip().endswith("data: [DONE]")
        if got == 200 and ended and (('"error"' in text) == error):
            out.planned(kind)
        else:
            out.unplanned(kind, f"{got} {text[-300:]}")

    return check


async def cached(session: aiohttp.ClientSession, url: str, out: Outcomes) -> None:
    prompt = random.choice(CACHED_PROMPTS)
    body = {"model": "mock", "messages": [{"role": "user", "content": prompt}]}
    got, text, headers = await post(session, url, body)
    if got == 200 and prompt in text:
        out.planned("cache")
        out.cache_hits += headers.get("x-gateway-cache", "").startswith("hit")
    else:
        out.unplanned("cache", f"{got} {text}")


async def leave_mid_stream(session: aiohttp.ClientSession, url: str, out: Outcomes) -> None:
    body = {"model": "upstream", "messages": MESSAGES, "stream": True}
    async with session.post(url, json=body) as response:
        first = await response.content.readany()
        response.close()  # drop the connection with the stream unfinished
    if response.status == 200 and first.startswith(b"data:"):
        out.planned("leave")
    else:
        out.unplanned("leave", f"{response.status} {first[:200]!r}")


MIX: list[tuple[Check, int]] = [
    (expect("chat", {"model": "upstream", "messages": MESSAGES}, 200, '"choices"'), 35),
    (stream_expect("stream", "upstream", error=False), 20),
    (cached, 10),
    (expect("429", {"model": "ratelimited", "messages": MESSAGES}, 429, "slow down"), 8),
    (expect("500->502", {"model": "broken", "messages": MESSAGES}, 502, '"error"'), 8),
    (expect("refused", {"model": "dead", "messages": MESSAGES}, 502, "could not be reached"), 4),
    (stream_expect("stream-cut", "cut", error=True), 5),
    (expect("invalid", {"model": "upstream", "messages": "nope"}, 400, "messages"), 5),
    (leave_mid_stream, 5),
]


async def drive(port: int, count: int, concurrency: int, out: Outcomes) -> None:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    checks = random.choices([c for c, _ in MIX], weights=[w for _, w in MIX], k=count)
    queue = iter(checks)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def worker() -> None:
            for check in queue:
                try:
                    await check(session, url, out)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    out.unplanned("transport", repr(exc))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settle_fds(pid: int, baseline: int, seconds: float) -> int:
    """Open fds once idle: wait (up to `seconds`) for pooled keep-alives to expire."""
    deadline = time.monotonic() + seconds
    count = fd_count(pid)
    while count > baseline and time.monotonic() < deadline:
        time.sleep(0.5)
        count = fd_count(pid)
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    random.seed(1)
    warmup = max(2_000, args.requests // 10)
    out = Outcomes()
    with tempfile.TemporaryDirectory() as tmp, Processes(Path(tmp)) as procs:
        up_port, gw_port, dead_port = free_port(), free_port(), free_port()
        procs.start("upstream", mock_argv(up_port, chunks=5, chunk_delay_ms=0), up_port, None)
        config = write_config(soak_config(up_port, dead_port, gw_port), Path(tmp) / "soak.yaml")
        gateway = procs.start("gateway", gateway_argv(config, gw_port), gw_port, None)
        wait_for_health(gateway)
        pid = gateway.pid
        fds_start = fd_count(pid)
        asyncio.run(drive(gw_port, warmup, args.concurrency, out))
        time.sleep(1)
        rss_warm, fds_warm = rss_bytes(pid), settle_fds(pid, fds_start, 20)
        samples = []
        started = time.perf_counter()
        rounds = 10
        for _ in range(rounds):
            asyncio.run(drive(gw_port, args.requests // rounds, args.concurrency, out))
            samples.append(rss_bytes(pid))
        elapsed = time.perf_counter() - started
        time.sleep(1)
        rss_end = rss_bytes(pid)
        fds_end = settle_fds(pid, fds_warm, 30)
        alive = gateway.popen.poll() is None
        log_tail = gateway.log_tail(20)
    growth = (rss_end - rss_warm) / rss_warm
    unplanned = sum(n for kind, n in out.counts.items() if "UNPLANNED" in kind)
    mib = 1024 * 1024
    print(
        f"{args.requests} requests (+{warmup} warm-up) at concurrency {args.concurrency} "
        f"in {elapsed:.1f} s ({args.requests / elapsed:.0f} req/s)"
    )
    for kind, n in sorted(out.counts.items()):
        print(f"  {kind:<22} {n}")
    print(f"  cache hits             {out.cache_hits}")
    print(
        f"RSS: warmed-up {rss_warm / mib:.1f} MiB, end {rss_end / mib:.1f} MiB "
        f"({growth:+.1%}); per tenth: {' '.join(f'{s / mib:.1f}' for s in samples)}"
    )
    print(f"open fds: start {fds_start}, warmed-up {fds_warm}, end (idle) {fds_end}")
    print(f"unplanned outcomes: {unplanned}; worker alive: {alive}")
    for error in out.errors:
        print("  ", error)
    ok = growth < 0.10 and fds_end <= fds_warm and unplanned == 0 and alive
    if not ok and not alive:
        print(log_tail)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
