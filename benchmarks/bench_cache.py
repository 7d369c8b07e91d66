"""Response-cache benchmarks: what the cache stage itself costs, measured in-process.

  exact      the cache stage answering a hit (key, backend GET, parse, reply) and the
             cost it adds to a miss, with the in-process LRU and with Redis
  semantic   a lookup including the embedding (all-MiniLM-L6-v2, one query) with N
             entries in the scope, in-process and in PostgreSQL + pgvector (HNSW)
  memory     RSS per N entries: exact LRU (1 KiB replies) and the in-process vector store
  embed      the forward passes side by side (batch 1 / 8 / 32): numpy, ONNX float32,
             ONNX int8 (shipped), and the float graph through quantize_dynamic
  lookup     semantic lookups (embed + search + guards) at 1 / 16 / 32 in flight, before
             and after issue 16 (semantic_load.py): latency, lookups/s, event-loop lag

Timings are reported, never asserted. Targets: exact hit with Redis <= 1 ms p50; semantic
lookup with 100k entries <= 10 ms p50.

    .venv/bin/python benchmarks/bench_cache.py [--entries 100000] [--only exact|semantic|memory]
                                               [--redis redis://127.0.0.1:6379/0] [--no-pgvector]
    .venv/bin/python benchmarks/bench_cache.py --only lookup [--variants onnx+batch,onnx-int8+batch]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one query: BLAS threads only contend
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import orjson
from common import format_table, percentile
from semantic_load import bench_lookup, forward_rows

from gateway.cache.exact import MemoryExactCache, RedisExactCache
from gateway.cache.memory_store import MemoryVectorStore
from gateway.cache.semantic import SemanticCache, VectorStore
from gateway.config.cache import CacheConfig
from gateway.config.schema import DeploymentConfig, ModelConfig
from gateway.context import RequestContext
from gateway.observability.metrics import Metrics
from gateway.pipeline.cache import Cache
from gateway.state.redis import RedisState
from gateway.types import Reply

DIM = 384
REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "x" * 800},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 200, "total_tokens": 220},
}
BODY = {
    "model": "bench",
    "messages": [
        {"role": "system", "content": "You classify support tickets. " * 5},
        {"role": "user", "content": "My parcel never arrived, order 12345."},
    ],
    "temperature": 0,
}


async def timed(fn: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    for _ in range(min(50, runs)):
        await fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def row(name: str, samples: list[float]) -> list[object]:
    return [name, f"{percentile(samples, 50):.3f}", f"{percentile(samples, 99):.3f}", len(samples)]


# -- exact ---------------------------------------------------------------------------------


async def bench_exact(redis_url: str, runs: int) -> list[list[object]]:
    models = {"bench": ModelConfig(deployments=[DeploymentConfig(provider="p", model="m")])}
    config = CacheConfig(enabled=True)
    state = RedisState(redis_url, prefix=f"bench-{uuid.uuid4().hex}:")
    rows = []
    try:
        for name, backend in (
            ("memory", MemoryExactCache(10_000, 1 << 26)),
            ("redis", RedisExactCache(state)),
        ):
            stage = Cache(config, models, backend, None, Metrics())

            async def upstream(ctx: RequestContext) -> Reply:
                return Reply(body=REPLY)

            def ctx() -> RequestContext:
                c = RequestContext("r", "chat", dict(BODY), {}, "127.0.0.1", alias="bench")
                c.target_alias = "bench"
                return c

            first = await stage(ctx(), upstream)
            await first.close()  # stores the reply

            async def hit(stage: Cache = stage) -> Reply:
                reply = await stage(ctx(), upstream)
                assert reply.body is not None and reply.body["choices"]
                return reply

            async def miss(stage: Cache = stage) -> Reply:  # never stored; upstream is instant
                c = ctx()
                c.body["seed"] = uuid.uuid4().int >> 66
                return await stage(c, upstream)

            rows.append(row(f"exact hit, {name}", await timed(hit, runs)))
            rows.append(row(f"exact miss (added), {name}", await timed(miss, runs)))
    finally:
        await state.aclose()
    return rows


# -- semantic ------------------------------------------------------------------------------


def random_unit_rows(count: int, seed: int = 7) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIM), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


QUESTIONS = [
    "What is the tallest mountain in Africa?",
    "How do I reset my password?",
    "Where can I change my delivery address?",
    "Convert 100 USD to EUR.",
    "What are three ways to speed up learning a language?",
]


async def semantic_rows(
    name: str, store: VectorStore, runs: int, embedder: object
) -> list[list[object]]:
    from gateway.cache.matcher import MatchPolicy

    cache = SemanticCache(embedder, store, MatchPolicy())  # type: ignore[arg-type]
    vectors = [(await cache.embed(q))[0] for q in QUESTIONS]
    for q, v in zip(QUESTIONS, vectors, strict=True):
        await store.add("scope", v, q, orjson.dumps(REPLY), 3600)
    i = 0

    async def search_only() -> object:
        nonlocal i
        i += 1
        return await cache.lookup("scope", QUESTIONS[i % 5], vectors[i % 5])

    async def with_embedding() -> object:
        nonlocal i
        i += 1
        text = QUESTIONS[i % 5] + f" ({i})"
        vector, _ = await cache.embed(text)
        return await cache.lookup("scope", text, vector)

    return [
        row(f"semantic search only, {name}", await timed(search_only, runs)),
        row(f"semantic lookup incl. embedding, {name}", await timed(with_embedding, runs)),
    ]


def distinct_payload(i: int) -> bytes:
    """A reply of realistic size, a separate object per entry (as a real cache holds)."""
    return orjson.dumps({**REPLY, "id": f"chatcmpl-{i}"})


async def fill_memory(store: MemoryVectorStore, rows: np.ndarray, scopes: int = 1) -> None:
    for i, vector in enumerate(rows):
        scope = "scope" if scopes == 1 else f"scope-{i % scopes}"
        await store.add(scope, vector, f"question {i}", distinct_payload(i), 3600)


async def fill_pgvector(dsn: str, table: str, rows: np.ndarray) -> float:
    from gateway.cache.pgvector import PgVectorStore

    store = PgVectorStore(dsn, table, DIM)
    pool = await store.pool()
    await pool.execute(f"DROP INDEX IF EXISTS {table}_hnsw")
    payload = orjson.dumps(REPLY)
    records = [("scope", f"question {i}", payload, v) for i, v in enumerate(rows)]
    for start in range(0, len(records), 5000):
        await pool.executemany(
            f"INSERT INTO {table} (scope, question, reply, embedding, expires_at) "
            "VALUES ($1, $2, $3, $4, now() + interval '1 day')",
            records[start : start + 5000],
        )
    started = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(
            f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)"
        )
        await conn.execute(f"ANALYZE {table}")
    await store.aclose()
    return time.perf_counter() - started


async def bench_semantic(entries: int, runs: int, pgvector: bool) -> list[list[object]]:
    from gateway.cache.embedders import LocalMiniLMEmbedder

    embedder = LocalMiniLMEmbedder()
    await embedder.warm_up()
    rows = random_unit_rows(entries)
    results = [
        row(
            "embedding only (MiniLM, 1 query)",
            await timed(lambda: embedder.embed(["How do I reset my password?"]), runs),
        )
    ]
    memory = MemoryVectorStore(DIM, max_per_scope=entries + 10)
    await fill_memory(memory, rows)
    results += await semantic_rows(f"memory {entries} in 1 scope", memory, runs, embedder)
    await memory.aclose()
    scopes = max(1, entries // 1000)
    spread = MemoryVectorStore(DIM, max_per_scope=entries + 10)
    await fill_memory(spread, rows, scopes)
    label = f"memory {entries} in {scopes} scopes"
    results += await semantic_rows(label, spread, runs, embedder)
    await spread.aclose()
    if pgvector:
        results += await bench_pgvector(rows, runs, embedder)
    return results


async def bench_pgvector(rows: np.ndarray, runs: int, embedder: object) -> list[list[object]]:
    import pgserver

    from gateway.cache.pgvector import PgVectorStore

    with tempfile.TemporaryDirectory(prefix="bench-pg-") as folder:
        server = pgserver.get_server(folder, cleanup_mode="stop")
        try:
            dsn, table = server.get_uri(), "bench_semantic"
            built = await fill_pgvector(dsn, table, rows)
            print(f"pgvector: HNSW index over {len(rows)} rows built in {built:.1f} s")
            store = PgVectorStore(dsn, table, DIM)
            try:
                return await semantic_rows(f"pgvector {len(rows)}", store, runs, embedder)
            finally:
                await store.aclose()
        finally:
            server.cleanup()


# -- memory --------------------------------------------------------------------------------


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def bench_memory(entries: int) -> list[list[object]]:
    payload = distinct_payload(0)
    before = rss()
    exact = MemoryExactCache(entries + 1, 1 << 40)
    for i in range(entries):
        await exact.put(f"x:{i:032x}", distinct_payload(i), 3600)
    exact_bytes = rss() - before
    rows_ = random_unit_rows(entries)
    before = rss()
    store = MemoryVectorStore(DIM, max_per_scope=entries + 10)
    await fill_memory(store, rows_)
    semantic_bytes = rss() - before
    mib = 1024 * 1024
    return [
        [f"exact LRU, {entries} x {len(payload)} B replies", f"{exact_bytes / mib:.1f} MiB"],
        [
            f"semantic in-process, {entries} x {DIM}-dim + replies",
            f"{semantic_bytes / mib:.1f} MiB",
        ],
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--only", choices=["exact", "semantic", "memory", "embed", "lookup"])
    parser.add_argument(
        "--variants",
        default="before,onnx+batch,onnx-int8+batch,onnx-int8+batch-nice,onnx-int8+batch-nice+shed",
    )
    parser.add_argument("--lookups", type=int, default=320, help="per concurrency (lookup)")
    parser.add_argument(
        "--upstream-ms",
        type=float,
        default=0.0,
        help="lookup: each request then waits this long (its upstream call) before the next",
    )
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--no-pgvector", action="store_true")
    args = parser.parse_args()
    headers = ["what", "p50 ms", "p99 ms", "runs"]
    if args.only in (None, "exact"):
        print(format_table(headers, await bench_exact(args.redis, args.runs * 10)), "\n")
    if args.only in (None, "semantic"):
        rows = await bench_semantic(args.entries, args.runs, not args.no_pgvector)
        print(format_table(headers, rows), "\n")
    if args.only in (None, "memory"):
        print(format_table(["what", "RSS added"], await bench_memory(args.entries)))
    if args.only in (None, "embed"):
        rows = forward_rows(args.runs // 10)
        print(format_table(["what", "p50 ms", "CPU ms per text"], rows), "\n")
    if args.only in (None, "lookup"):
        upstream_s = args.upstream_ms / 1000
        rows = await bench_lookup(args.variants.split(","), [1, 16, 32], args.lookups, upstream_s)
        head = ["variant", "in flight", "p50 ms", "p99 ms", "lookups/s", "per CPU-s"]
        head += ["lag p99 ms", "lag max ms", "step CPU ms", "skipped"]
        print(format_table(head, rows))


if __name__ == "__main__":
    asyncio.run(main())
