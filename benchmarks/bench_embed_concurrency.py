"""The local embedder under concurrency: 16 concurrent single-sentence embeds per round.

Strategies (each in a fresh process, as the BLAS bound is process-wide):
  default  asyncio.to_thread, BLAS with its default thread count (one per core)
  blas1    asyncio.to_thread, BLAS bounded to 1 thread (what the gateway does)
  pool1    one dedicated worker thread, BLAS 1
  pool2    two dedicated worker threads, BLAS 1
  batch    one dedicated worker thread that embeds the calls queued meanwhile together

Prints the single-call latency, p50/p99 per call and throughput under concurrency, and
the event loop's lag (p99 of a 5 ms ticker). `--busy N` runs N busy-looping processes
beside, for a loaded machine. Asserts nothing. Needs the `semantic` extra and the model.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

STRATEGIES = ("default", "blas1", "pool1", "pool2", "batch")
TEXTS = [f"How do I reset my password for account number {i}?" for i in range(16)]
Embed = Callable[[list[str]], Awaitable[object]]


class Batcher:
    """One worker thread; the calls that queue while it computes go in its next batch."""

    def __init__(self, embed_sync: Callable[[list[str]], object]) -> None:
        self.embed_sync = embed_sync
        self.pool = cf.ThreadPoolExecutor(1)
        self.pending: list[tuple[list[str], asyncio.Future[object]]] = []
        self.running = False
        self.task: asyncio.Task[None] | None = None

    async def embed(self, texts: list[str]) -> object:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self.pending.append((texts, future))
        if not self.running:
            self.running = True
            self.task = loop.create_task(self.drain())
        return await future

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            batch, self.pending = self.pending, []
            flat = [text for texts, _ in batch for text in texts]
            rows = await loop.run_in_executor(self.pool, self.embed_sync, flat)
            start = 0
            for texts, future in batch:
                future.set_result(rows[start : start + len(texts)])  # type: ignore[index]
                start += len(texts)
        self.running = False


def strategy(name: str) -> Embed:
    from gateway.cache.embedders import LocalMiniLMEmbedder, limit_blas_threads

    embedder = LocalMiniLMEmbedder()
    embedder.embed_sync(["warm up"])  # loads the model, which bounds BLAS to 1 thread
    if name == "default":
        limit_blas_threads(os.cpu_count() or 1)  # undo the bound: OpenBLAS's default
    if name in ("default", "blas1"):
        return lambda texts: asyncio.to_thread(embedder.embed_sync, texts)
    if name.startswith("pool"):
        pool = cf.ThreadPoolExecutor(int(name[4:]))
        return lambda texts: asyncio.get_running_loop().run_in_executor(
            pool, embedder.embed_sync, texts
        )
    return Batcher(embedder.embed_sync).embed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def measure(name: str, rounds: int) -> str:
    embed = strategy(name)
    single: list[float] = []
    for text in TEXTS[:8]:
        start = time.perf_counter()
        await embed([text])
        single.append(time.perf_counter() - start)
    latencies: list[float] = []
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - start - 0.005)

    async def one(text: str) -> None:
        start = time.perf_counter()
        await embed([text])
        latencies.append(time.perf_counter() - start)

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*(one(text) for text in TEXTS))
    wall = time.perf_counter() - start
    done.set()
    await tick
    return (
        f"{name:8s} single={percentile(single, 0.5):6.1f}ms | 16 concurrent: "
        f"p50={percentile(latencies, 0.5):7.1f}ms p99={percentile(latencies, 0.99):7.1f}ms "
        f"throughput={rounds * len(TEXTS) / wall:5.1f}/s "
        f"loop-lag p99={percentile(lags, 0.99):6.1f}ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--busy", type=int, default=0, help="busy processes beside")
    parser.add_argument("--only", choices=STRATEGIES)
    args = parser.parse_args()
    if args.only:
        print(asyncio.run(measure(args.only, args.rounds)), flush=True)
        return
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        for name in STRATEGIES:
            argv = [sys.executable, __file__, "--only", name, "--rounds", str(args.rounds)]
            subprocess.run(argv, check=True, timeout=300)
    finally:
        for process in busy:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
