"""The cost of auth + rate limits: added latency per request against the core path.

Four gateways in front of the same mock upstream, one at a time:
  core        no keys, no limits (the quickstart path)
  memory      a key checked + request, token and global limits, `memory://` storage
  core-redis  no keys, no limits, state.backend redis (other stages may use Redis)
  redis       the limits of `memory` shared through Redis; compared with core-redis
Each is measured with sequential keep-alive requests (client p50/p99 and the gateway's
own x-gateway-overhead-ms) and with wrk at 1 and 32 connections. Added milliseconds and
ratios are printed next to the core figures of the same run; nothing is asserted.

    .venv/bin/python benchmarks/bench_limits.py [--quick] [--redis-url redis://...]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import (
    CHAT_BODY,
    CHAT_PATH,
    CPU_GATEWAY,
    CPU_LOAD,
    Processes,
    format_table,
    free_port,
    gateway_argv,
    gateway_config,
    mock_argv,
    percentile,
    prepare_runner,
    run_wrk,
    wait_for_health,
    write_config,
    write_wrk_script,
)

KEY = "sk-bench-0123456789abcdef"
LIMITS = {
    "default_key": {
        "requests": ["100000000/minute", "1000000000/day"],
        "tokens": ["1000000000000/minute"],
    },
    "global": {"requests": ["1000000000/minute"]},
}


def variant_config(kind: str, upstream: int, port: int, redis_url: str) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    redis_state = {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix}
    if kind == "core":
        return gateway_config(upstream, port)
    if kind == "core-redis":  # other stages may use Redis too: the baseline for `redis`
        return gateway_config(upstream, port, state=redis_state)
    key_hash = "sha256:" + hashlib.sha256(KEY.encode()).hexdigest()
    overrides: dict[str, Any] = {
        "auth": {"keys": [{"id": "bench", "hash": key_hash}]},
        "limits": LIMITS,
    }
    if kind == "redis":
        overrides["state"] = redis_state
    return gateway_config(upstream, port, **overrides)


def sequential(port: int, count: int, headers: dict[str, str]) -> dict[str, float]:
    """Client latency and the gateway's own overhead header, one request at a time."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps(CHAT_BODY).encode()
    sent = {"Content-Type": "application/json", **headers}
    latencies, overheads = [], []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", CHAT_PATH, body=body, headers=sent)
        resp = conn.getresponse()
        resp.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} during the benchmark")
        overheads.append(float(resp.getheader("x-gateway-overhead-ms") or "nan"))
    conn.close()
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "overhead_p50_ms": percentile(overheads, 50),
        "overhead_p99_ms": percentile(overheads, 99),
    }


def measure(kind: str, args: argparse.Namespace, upstream: int, tmp: Path) -> dict[str, float]:
    port = free_port()
    config = write_config(
        variant_config(kind, upstream, port, args.redis_url), tmp / f"{kind}.yaml"
    )
    headers = {} if kind.startswith("core") else {"Authorization": f"Bearer {KEY}"}
    with Processes(tmp) as procs:
        gw = procs.start(f"gateway-{kind}", gateway_argv(config, port), port, CPU_GATEWAY)
        wait_for_health(gw)
        sequential(port, args.warmup, headers)
        figures = sequential(port, args.requests, headers)
        script = write_wrk_script(tmp / f"{kind}.lua", CHAT_BODY, headers)
        for connections in (1, 32):
            result = run_wrk(f"http://127.0.0.1:{port}{CHAT_PATH}", connections, args.wrk_s, script)
            figures[f"rps_c{connections}"] = result.rps
            figures[f"wrk_p50_c{connections}"] = result.p50_ms
            figures[f"errors_c{connections}"] = result.errors
    return figures


BASELINE = {"core": "core", "memory": "core", "core-redis": "core", "redis": "core-redis"}


def report(results: dict[str, dict[str, float]]) -> str:
    rows = []
    for kind, r in results.items():
        core = results[BASELINE[kind]]
        rows.append(
            [
                f"{kind} ({BASELINE[kind]})",
                f"{r['p50_ms']:.3f}",
                f"{r['p50_ms'] - core['p50_ms']:+.3f}",
                f"{r['overhead_p50_ms']:.3f}",
                f"{r['overhead_p50_ms'] - core['overhead_p50_ms']:+.3f}",
                f"{r['p99_ms']:.3f}",
                f"{r['rps_c1']:.0f}",
                f"{r['rps_c32']:.0f} ({r['rps_c32'] / core['rps_c32']:.2f}x)",
                f"{r['wrk_p50_c32']:.2f}",
                int(r["errors_c1"] + r["errors_c32"]),
            ]
        )
    headers = [
        "variant",
        "p50 ms",
        "added",
        "overhead p50",
        "added",
        "p99 ms",
        "rps c1",
        "rps c32 (vs core)",
        "p50 c32",
        "errors",
    ]
    return format_table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter wrk runs")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    args.requests, args.warmup, args.wrk_s = (500, 100, 3) if args.quick else (3000, 300, 8)
    prepare_runner()
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as name:
        tmp = Path(name)
        with Processes(tmp) as procs:
            upstream = free_port()
            mock = procs.start("mock", mock_argv(upstream), upstream, CPU_LOAD)
            wait_for_health(mock)
            results = {kind: measure(kind, args, upstream, tmp) for kind in BASELINE}
    print(f"auth + limits overhead ({args.requests} sequential requests; wrk {args.wrk_s}s)")
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
