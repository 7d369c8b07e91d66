"""The cost of the PostgreSQL usage ledger on the hot path, and why its queue is in memory.

Two gateways in the production shape (a key checked, request/token limits and a budget in
Redis), one without and one with `state.database`, measured alternately (A B A B) in front
of the same mock upstream: wrk throughput at 32 connections and sequential p50. Then the
cost per row of the two places a failed write could wait: an in-memory deque (chosen) and
a Redis stream (XADD per request), and the memory one queued row takes. Ratios, no asserts.

    .venv/bin/python benchmarks/bench_ledger.py [--quick] [--redis-url ...] [--postgres-url ...]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import asyncpg
import redis
from bench_limits import KEY, LIMITS, sequential
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
    prepare_runner,
    run_wrk,
    wait_for_health,
    write_config,
    write_wrk_script,
)

from gateway.accounting.pricing import PriceBook
from gateway.context import RequestContext
from gateway.db.ledger import ledger_row
from gateway.types import Reply, Usage


def variant_config(ledger: bool, upstream: int, port: int, args: argparse.Namespace) -> dict:
    state: dict[str, Any] = {
        "backend": "redis",
        "redis_url": args.redis_url,
        "key_prefix": f"bench-{uuid.uuid4().hex[:8]}:",
    }
    if ledger:
        state["database"] = args.database_url
    key_hash = "sha256:" + hashlib.sha256(KEY.encode()).hexdigest()
    budget = {"usd_per_day": 1e12, "tokens_per_month": 10**15}
    auth = {"keys": [{"id": "bench", "hash": key_hash, "team": "t", "budget": budget}]}
    return gateway_config(upstream, port, state=state, auth=auth, limits=LIMITS)


def measure(ledger: bool, args: argparse.Namespace, upstream: int, tmp: Path) -> dict:
    port = free_port()
    name = "ledger" if ledger else "no-ledger"
    config = write_config(variant_config(ledger, upstream, port, args), tmp / f"{name}.yaml")
    headers = {"Authorization": f"Bearer {KEY}"}
    with Processes(tmp) as procs:
        gw = procs.start(f"gateway-{name}", gateway_argv(config, port), port, CPU_GATEWAY)
        wait_for_health(gw)
        sequential(port, args.warmup, headers)
        figures = sequential(port, args.requests, headers)
        script = write_wrk_script(tmp / f"{name}.lua", CHAT_BODY, headers)
        result = run_wrk(f"http://127.0.0.1:{port}{CHAT_PATH}", 32, args.wrk_s, script)
        figures["rps_c32"] = result.rps
        figures["errors"] = result.errors
    return figures


def queue_costs(redis_url: str, rows: int) -> dict[str, float]:
    """Microseconds per row: building it, a deque append, a Redis XADD; bytes per queued row."""
    ctx = RequestContext("req-" + "0" * 28, "chat", {"model": "bench"}, {}, "127.0.0.1")
    ctx.alias = ctx.target_alias = "bench"
    ctx.deployment = "upstream/bench-model"
    reply = Reply(body={}, usage=Usage(120, 40))
    prices = PriceBook()
    prices.cost("bench", "bench-model", 1, 1)  # load the price table before timing
    started = time.perf_counter()
    built = [ledger_row(ctx, reply, prices, 1 << 70) for _ in range(rows)]
    build_us = (time.perf_counter() - started) / rows * 1e6
    queue: deque[Any] = deque()
    started = time.perf_counter()
    for row in built:
        queue.append(row)
    append_us = (time.perf_counter() - started) / rows * 1e6
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = deque(ledger_row(ctx, reply, prices, 1 << 70) for _ in range(rows))
    row_bytes = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    tracemalloc.stop()
    client = redis.Redis.from_url(redis_url)
    stream = f"bench-ledger-{uuid.uuid4().hex[:8]}"
    fields = {str(i): str(v) for i, v in enumerate(built[0])}
    count = min(rows, 5000)
    started = time.perf_counter()
    for _ in range(count):
        client.xadd(stream, fields)
    xadd_us = (time.perf_counter() - started) / count * 1e6
    client.delete(stream)
    client.close()
    return {
        "build_us": build_us,
        "append_us": append_us,
        "xadd_us": xadd_us,
        "row_bytes": row_bytes,
    }


async def write_cost(database_url: str, rows: int) -> float:
    """CPU microseconds per row the writer costs this process (batches of its default size);
    PostgreSQL's own work runs elsewhere."""
    from gateway.db.ledger import LedgerWriter
    from gateway.db.pool import Database
    from gateway.observability.metrics import Metrics

    db = Database(database_url)
    writer = LedgerWriter(db, Metrics(), capacity=rows)
    ctx = RequestContext("req-bench", "chat", {"model": "bench"}, {}, "127.0.0.1")
    ctx.alias = ctx.target_alias = "bench"
    ctx.deployment = "upstream/bench-model"
    reply = Reply(body={}, usage=Usage(120, 40))
    prices = PriceBook()
    for _ in range(rows):
        writer.record(ctx, reply, prices)
    await writer.write_batch()  # connect and warm up outside the timing
    started = time.process_time()
    await writer.flush(timeout=60)
    elapsed = time.process_time() - started
    await db.aclose()
    return elapsed / (rows - writer.batch) * 1e6


async def make_database(admin_url: str) -> str:
    from gateway.db.migrations import upgrade

    name = f"bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    conn = await asyncpg.connect(url)
    await upgrade(conn)
    await conn.close()
    return url


async def drop_database(admin_url: str, url: str) -> int:
    conn = await asyncpg.connect(url)
    rows = int(await conn.fetchval("SELECT count(*) FROM usage_ledger"))
    await conn.close()
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs, alternated")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    args.requests, args.warmup, args.wrk_s = (300, 100, 3) if args.quick else (2000, 300, 8)
    prepare_runner()
    args.database_url = asyncio.run(make_database(args.postgres_url))
    results: dict[str, list[dict]] = {"no-ledger": [], "ledger": []}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as name:
            tmp = Path(name)
            with Processes(tmp) as procs:
                upstream = free_port()
                mock = procs.start("mock", mock_argv(upstream), upstream, CPU_LOAD)
                wait_for_health(mock)
                for _ in range(args.rounds):
                    for ledger in (False, True):
                        figures = measure(ledger, args, upstream, tmp)
                        results["ledger" if ledger else "no-ledger"].append(figures)
        costs = queue_costs(args.redis_url, 20000)
        costs["write_us"] = asyncio.run(write_cost(args.database_url, 20000))
    finally:
        written = asyncio.run(drop_database(args.postgres_url, args.database_url))
    print(report(results, written))
    print(
        f"per row: build {costs['build_us']:.2f} us, deque append {costs['append_us']:.3f} us, "
        f"Redis XADD {costs['xadd_us']:.1f} us (a round trip per request); "
        f"{costs['row_bytes']:.0f} bytes per queued row in memory; "
        f"batch write {costs['write_us']:.1f} us CPU per row (off the request path)"
    )
    per_request_us = 1e6 / max(r["rps_c32"] for r in results["no-ledger"])
    share = (costs["build_us"] + costs["write_us"]) / per_request_us
    print(
        f"the ledger's CPU per request: {share:.2%} of the gateway's own "
        f"({per_request_us:.0f} us per request at its best c32 throughput in this run)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"gateways": results, "queue": costs}, indent=2))
    return 0


def report(results: dict[str, list[dict]], written: int) -> str:
    rows = []
    for name, runs in results.items():
        base = results["no-ledger"]
        for i, r in enumerate(runs):
            rows.append(
                [
                    f"{name} #{i + 1}",
                    f"{r['rps_c32']:.0f}",
                    f"{r['rps_c32'] / base[i]['rps_c32']:.3f}",
                    f"{r['p50_ms']:.3f}",
                    f"{r['overhead_p50_ms']:.3f}",
                    int(r["errors"]),
                ]
            )
    table = format_table(
        ["gateway", "rps c32", "vs no-ledger (same round)", "p50 ms", "overhead p50", "errors"],
        rows,
    )
    return f"{table}\nledger rows written: {written}"


if __name__ == "__main__":
    sys.exit(main())
