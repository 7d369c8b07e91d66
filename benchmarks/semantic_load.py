"""Semantic lookups under concurrency, for bench_cache.py --only lookup.

One lookup is what the cache stage does on a semantic miss: embed the newest user text,
search its scope (1,000 entries, 100 of them near-duplicates, so the guards judge four
candidates per lookup), judge the candidates. Variants, side by side in one run:

  before        numpy forward per request in asyncio.to_thread, search on the event loop
                (the code before issue 16)
  numpy+batch   numpy forward, micro-batched in one worker thread, search in the store's
  onnx+batch    ONNX Runtime forward (float32), micro-batched (gather 0 ms), search in the
                store's thread
  onnx+batch2   the same with a 2 ms gather window
  onnx-int8+batch  the float graph's linear layers in int8, as onnx+batch
  onnx-int8+batch-nice  the same with the worker thread at a lower priority (the
                shipped embedder: EMBED_NICE)
  onnx-int8+batch-nice+shed  the same with cache.semantic.max_wait_ms (the shipped
                default, 40 ms): a lookup whose embedding would wait longer skips the
                cache (the `skipped` column; its latency is counted too, ~0)

Every text is new (no LRU hit) except in the `LRU hit` row. Reported per concurrency:
p50/p99 latency, lookups/s, lookups per CPU-second (the process's CPU time: "per core"),
the event loop's lag (a 1 ms ticker's overshoot, p99 and worst: on a loaded machine
mostly the OS's doing, see the idle row) and the longest loop step in CPU time (what our
code blocks the loop for).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
from common import percentile

from gateway.cache.embedders import EMBED_NICE, LocalMiniLMEmbedder
from gateway.cache.matcher import MatchPolicy
from gateway.cache.memory_store import MemoryVectorStore
from gateway.cache.semantic import Candidate, SemanticCache
from gateway.config.cache import SemanticCacheConfig

SHED_WAIT_S = SemanticCacheConfig().max_wait_ms / 1000

SUBJECTS = ["password", "invoice", "parcel", "refund", "account", "subscription", "order"]
VERBS = ["reset", "find", "track", "cancel", "update", "download", "change"]
_serial = itertools.count()


def fresh_text() -> str:
    i = next(_serial)
    subject, verb = SUBJECTS[i % 7], VERBS[(i // 7) % 7]
    return f"How do I {verb} my {subject} from the mobile app, case {i}?"


class LoopStore(MemoryVectorStore):
    """The store before issue 16: the search ran on the event loop."""

    async def search(self, scope: str, vector: np.ndarray, limit: int) -> list[Candidate]:
        found = self.index.search(scope, vector, limit)
        return [Candidate(text, value, similarity) for similarity, _, (text, value) in found]


class ThreadEmbedder:
    """The embedder before issue 16: one numpy forward per request, in asyncio.to_thread."""

    dim = 384

    def __init__(self) -> None:
        self.inner = LocalMiniLMEmbedder(backend="numpy", recent=0)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.inner.embed_sync, texts)


async def build(variant: str) -> SemanticCache:
    if variant == "before":
        embedder: object = ThreadEmbedder()
        store: MemoryVectorStore = LoopStore(384, 10_000)
        await asyncio.to_thread(embedder.inner.embed_sync, ["warm"])  # type: ignore[attr-defined]
    else:
        backend, batching, *_ = variant.split("+")
        gather = 0.002 if batching == "batch2" else 0.0
        nice = EMBED_NICE if batching == "batch-nice" else 0
        embedder = LocalMiniLMEmbedder(backend=backend, gather_s=gather, nice=nice)  # type: ignore[arg-type]
        await embedder.warm_up()  # type: ignore[attr-defined]
        store = MemoryVectorStore(384, 10_000)
    max_wait = SHED_WAIT_S if variant.endswith("+shed") else 0.0
    cache = SemanticCache(embedder, store, MatchPolicy(), max_wait)  # type: ignore[arg-type]
    rows = np.random.default_rng(3).standard_normal((900, 384), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    reply = orjson.dumps({"choices": [{"message": {"content": "x" * 800}}]})
    for i, row in enumerate(rows):
        await store.add("scope", row, f"question {i}", reply, 3600)
    # 100 real near-duplicates: every lookup meets candidates above the threshold, so the
    # guards run (and refuse: the case numbers differ)
    for text in [fresh_text() for _ in range(100)]:
        vector, _ = await cache.embed(text)
        assert vector is not None
        await store.add("scope", vector, text, reply, 3600)
    return cache


async def lookup(cache: SemanticCache, text: str) -> bool:
    """One lookup; False when the cache stepped aside (its embedder too busy)."""
    vector, busy = await cache.embed(text)
    if vector is None:
        assert busy
        return False
    await cache.lookup("scope", text, vector)
    return True


class LoopSteps:
    """The CPU time of each callback the event loop runs (thread CPU time: a step the OS
    preempts on a loaded machine does not look longer than it is)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._original = asyncio.events.Handle._run

    def __enter__(self) -> LoopSteps:
        original, steps = self._original, self

        def timed(handle: asyncio.events.Handle) -> None:
            started = time.thread_time()
            original(handle)
            steps.longest = max(steps.longest, (time.thread_time() - started) * 1000)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]


async def loop_lag(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - started) * 1000 - 1.0)


async def run_load(
    cache: SemanticCache,
    in_flight: int,
    total: int,
    text: Callable[[], str] = fresh_text,
    upstream_s: float = 0.0,
) -> list[object]:
    """`total` lookups, `in_flight` at a time; with `upstream_s`, each request then waits
    that long (its upstream call, a miss) before the worker's next one: the closed loop
    a gateway sees, in which a skipped lookup does not come straight back."""
    latencies: list[float] = []
    lags: list[float] = []
    remaining = itertools.count()
    skipped = 0

    async def worker() -> None:
        nonlocal skipped
        while next(remaining) < total:
            started = time.perf_counter()
            looked_up = await lookup(cache, text())  # (not `+= await`: lost updates)
            skipped += not looked_up
            latencies.append((time.perf_counter() - started) * 1000)
            if upstream_s:
                await asyncio.sleep(upstream_s)

    stop = asyncio.Event()
    ticker = asyncio.create_task(loop_lag(stop, lags))
    wall, cpu = time.perf_counter(), time.process_time()
    with LoopSteps() as steps:
        await asyncio.gather(*(worker() for _ in range(in_flight)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stop.set()
    await ticker
    return [
        f"{percentile(latencies, 50):.2f}",
        f"{percentile(latencies, 99):.2f}",
        f"{total / wall:.0f}",
        f"{total / max(cpu, 1e-9):.0f}",
        f"{percentile(lags, 99):.2f}",
        f"{max(lags, default=0.0):.2f}",
        f"{steps.longest:.2f}",
        f"{skipped / total:.0%}",
    ]


async def idle_lag() -> list[object]:
    """The ticker alone for a second: what the machine's load adds to any loop."""
    lags: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(loop_lag(stop, lags))
    await asyncio.sleep(1.0)
    stop.set()
    await ticker
    lag_p99, lag_max = f"{percentile(lags, 99):.2f}", f"{max(lags):.2f}"
    return ["idle loop (machine noise)", 0, "", "", "", "", lag_p99, lag_max, "", ""]


async def bench_lookup(
    variants: list[str], loads: list[int], total: int, upstream_s: float = 0.0
) -> list[list[object]]:
    results = [await idle_lag()]
    for variant in variants:
        cache = await build(variant)
        await run_load(cache, 1, 20)  # warm
        # a full collection walks every object alive (30-110 ms of CPU here with 60-90k,
        # more with each variant's model loaded): left alone, one lands on whichever
        # variant runs when it triggers. Freezing the heap so far keeps them out of all.
        gc.collect()
        gc.freeze()
        for in_flight in loads:
            count = total if in_flight > 1 else total // 2
            figures = await run_load(cache, in_flight, count, upstream_s=upstream_s)
            results.append([variant, in_flight, *figures])
        if variant != "before":
            same = "How do I reset my password?"
            repeated = await run_load(cache, 1, 200, lambda same=same: same)
            results.append([f"{variant}, LRU hit", 1, *repeated])
    return results


def forward_rows(runs: int) -> list[list[object]]:
    """The forward passes side by side on the same texts, batch 1 / 8 / 32: numpy, ONNX
    float32, the shipped int8 graph, and the float graph quantised by the library
    (onnxruntime.quantization.quantize_dynamic) for comparison."""
    reference = LocalMiniLMEmbedder(backend="numpy")
    embedders = {
        "numpy": reference,
        "onnx": LocalMiniLMEmbedder(backend="onnx"),
        "onnx-int8": LocalMiniLMEmbedder(backend="onnx-int8"),
        "quantize_dynamic": library_int8_embedder(),
    }
    texts = [fresh_text() for _ in range(32)]
    vectors = {name: embedder.embed_sync(texts) for name, embedder in embedders.items()}
    rows: list[list[object]] = []
    for size in (1, 8, 32):
        batch = texts[:size]
        for name, embedder in embedders.items():
            wall, cpu = timed_sync(lambda e=embedder, b=batch: e.embed_sync(b), runs)
            p50 = percentile(wall, 50)
            rows.append([f"forward {name}, batch {size}", f"{p50:.2f}", f"{cpu / size:.2f}"])
    gap = float(np.abs(vectors["numpy"] - vectors["onnx"]).max())
    rows.append(["max |numpy - onnx| over 32 vectors", f"{gap:.2e}", ""])
    for name in ("onnx-int8", "quantize_dynamic"):
        cosine = float((vectors[name] * vectors["numpy"]).sum(axis=1).min())
        rows.append([f"min cosine {name} to numpy over 32 vectors", f"{cosine:.4f}", ""])
    return rows + mixed_length_rows(embedders["onnx-int8"], runs)


def mixed_length_rows(embedder: LocalMiniLMEmbedder, runs: int) -> list[list[object]]:
    """32 texts of 1 to 8 sentences (about 18 to 150 tokens) in one call: padded to the
    longest (the code before length groups), and in length groups (embed_sync)."""
    import numpy as np

    forward, tokenizer = embedder._loaded()
    texts = [fresh_text() * (1 << (i % 4)) for i in range(32)]

    def padded_to_longest() -> np.ndarray:
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        return forward(ids, np.array([e.attention_mask for e in encodings], dtype=np.float32))

    rows: list[list[object]] = []
    for name, call in (
        ("padded to the longest", padded_to_longest),
        ("length groups", lambda: embedder.embed_sync(texts)),
    ):
        wall, cpu = timed_sync(call, runs)
        p50 = percentile(wall, 50)
        rows.append([f"onnx-int8, 32 mixed lengths, {name}", f"{p50:.2f}", f"{cpu / 32:.2f}"])
    return rows


def library_int8_embedder() -> LocalMiniLMEmbedder:
    """The float graph quantised by onnxruntime's quantize_dynamic (int8 weights per
    channel; it also quantises the embedding table), through a temporary folder."""
    import logging
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from gateway.cache.bert_numpy import default_model_dir, load_bert
    from gateway.cache.bert_onnx import OnnxBert, build_model

    embedder = LocalMiniLMEmbedder(backend="onnx")
    _, tokenizer = embedder._loaded()
    float_model = onnx.load_from_string(build_model(load_bert(default_model_dir())))
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process the model
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "int8.onnx"
        quantize_dynamic(float_model, path, per_channel=True, weight_type=QuantType.QInt8)
        model = path.read_bytes()
    embedder._model = (OnnxBert(model).forward, tokenizer)  # the same tokenizer, this graph
    return embedder


def timed_sync(fn: Callable[[], object], runs: int) -> tuple[list[float], float]:
    """Wall-clock ms of each call, and the mean CPU ms per call (the process's)."""
    fn()
    samples = []
    cpu = time.process_time()
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, (time.process_time() - cpu) * 1000 / runs
