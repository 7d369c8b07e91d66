"""all-MiniLM-L6-v2 as an ONNX graph built from the packaged weights, run by ONNX Runtime.

The graph is the computation of `gateway.cache.bert_numpy.forward` written with standard
ONNX operators (opset 20: Gather, MatMul, LayerNormalization, Softmax, Gelu), built in
memory at load from the same safetensors weights: nothing is exported, downloaded or
written to disk. Its outputs are the mean-pooled sentence vectors before normalisation;
`OnnxBert.forward` normalises them. The float graph's vectors equal the numpy pass's
within 1e-5 (tests/cache/test_batcher.py).

`int8=True` builds the same graph with every linear layer (24 of them: over 99% of the
multiply-adds) as ONNX Runtime's `DynamicQuantizeMatMul`: weights int8, symmetric per
output column, quantised here at load; each activation quantised to uint8 per call (per
batch: a text's vector moves a little with its batch company). It runs 2.5-2.9x faster
on one core (AVX-512 VNNI) and its vectors keep a cosine of at least 0.985 to the float
ones on the eval texts (mean 0.994), with the same precision and recall on both labelled
sets (benchmarks/README.md, tests/cache/test_batcher.py).

`onnx` and `onnxruntime` are imported only here, and only when the local embedder loads.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from gateway.cache.bert_numpy import Bert, Layer
from gateway.cache.vectors import l2_normalise

if TYPE_CHECKING:
    import numpy as np

OPSET = 20  # Gelu (LayerNormalization: 17)
CONTRIB = "com.microsoft"  # ONNX Runtime's own operators: DynamicQuantizeMatMul
# ONNX Runtime fuses Add + LayerNormalization into SkipLayerNormalization, whose CPU
# kernel ran 10x slower than the two apart here (20 of 91 ms for 32 short texts, int8)
SLOW_FUSIONS = ["SkipLayerNormFusion"]


class _Graph:
    """Collects nodes and initialisers; each helper returns its output's name."""

    def __init__(self, int8: bool) -> None:
        self.int8 = int8
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: np.ndarray, hint: str = "w") -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.weights.append(numpy_helper.from_array(value, name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        from onnx import helper

        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def linear(self, x: str, w: np.ndarray, b: np.ndarray) -> str:
        if not self.int8:
            return self.op("Add", self.op("MatMul", x, self.const(w)), self.const(b))
        from onnx import helper

        quantised, scale = quantise_columns(w)
        inputs = [x, self.const(quantised), self.const(scale), "", self.const(b)]  # no zero point
        out = self.name("linear")
        self.nodes.append(helper.make_node("DynamicQuantizeMatMul", inputs, [out], domain=CONTRIB))
        return out

    def layer_norm(self, x: str, g: np.ndarray, b: np.ndarray, eps: float) -> str:
        return self.op("LayerNormalization", x, self.const(g), self.const(b), axis=-1, epsilon=eps)


def quantise_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 weights and one float32 scale per output column, symmetric: w ~ q * scale."""
    import numpy as np

    scale = np.maximum(np.abs(w).max(axis=0), 1e-12).astype(np.float32) / 127
    quantised = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return quantised, scale


def _ints(values: list[int]) -> np.ndarray:
    import numpy as np

    return np.array(values, dtype=np.int64)


def _attention(g: _Graph, x: str, bias: str, layer: Layer, heads: int, hidden: int) -> str:
    import numpy as np
    from onnx import helper

    size = hidden // heads
    # the columns are q, k, v, each head by head: one split separates them, where a
    # gather and a squeeze per part cost 5% more (int8, 32 texts)
    qkv = g.op(
        "Reshape", g.linear(x, layer.qkv_w, layer.qkv_b), g.const(_ints([0, 0, 3 * heads, size]))
    )
    by_head = g.op("Transpose", qkv, perm=[0, 2, 1, 3])  # (batch, 3 * heads, seq, size)
    q, k, v = (g.name(part) for part in "qkv")  # each (batch, heads, seq, size)
    g.nodes.append(
        helper.make_node("Split", [by_head, g.const(_ints([heads] * 3))], [q, k, v], axis=1)
    )
    scale = g.const(np.array(1 / math.sqrt(size), dtype=np.float32))
    k_t = g.op("Transpose", k, perm=[0, 1, 3, 2])  # (batch, heads, size, seq)
    scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k_t), scale), bias)
    context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    merged = g.op(
        "Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), g.const(_ints([0, 0, hidden]))
    )
    return g.linear(merged, layer.out_w, layer.out_b)


def build_model(bert: Bert, int8: bool = False) -> bytes:
    """The serialised ONNX model: inputs ids, positions (int64) and mask (float32, both
    (batch, seq)); output `pooled` (batch, hidden), the mean over real tokens. `int8`:
    the linear layers quantised (see the module docstring)."""
    import numpy as np
    from onnx import TensorProto, helper

    g = _Graph(int8)
    hidden = bert.word.shape[1]
    x = g.op("Gather", g.const(bert.word, "word"), "ids")
    x = g.op("Add", x, g.op("Gather", g.const(bert.position, "position"), "positions"))
    x = g.op("Add", x, g.const(bert.token_type[0], "token_type"))
    x = g.layer_norm(x, bert.ln_g, bert.ln_b, bert.eps)
    mask4 = g.op("Unsqueeze", "mask", g.const(_ints([1, 2])))  # (batch, 1, 1, seq)
    one = g.const(np.array(1.0, dtype=np.float32))
    lowest = g.const(np.array(np.finfo(np.float32).min, dtype=np.float32))
    bias = g.op("Mul", g.op("Sub", one, mask4), lowest)
    for layer in bert.layers:
        attended = g.op("Add", x, _attention(g, x, bias, layer, bert.heads, hidden))
        x = g.layer_norm(attended, layer.ln1_g, layer.ln1_b, bert.eps)
        up = g.op("Gelu", g.linear(x, layer.up_w, layer.up_b))  # exact (erf), as BERT's
        x = g.layer_norm(
            g.op("Add", x, g.linear(up, layer.down_w, layer.down_b)),
            layer.ln2_g,
            layer.ln2_b,
            bert.eps,
        )
    weights = g.op("Unsqueeze", "mask", g.const(_ints([2])))  # (batch, seq, 1)
    axis = g.const(_ints([1]))
    summed = g.op("ReduceSum", g.op("Mul", x, weights), axis, keepdims=0)
    count = g.op(
        "Max",
        g.op("ReduceSum", weights, axis, keepdims=0),
        g.const(np.array(1e-9, dtype=np.float32)),
    )
    g.nodes.append(helper.make_node("Div", [summed, count], ["pooled"]))
    inputs = [
        helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("positions", TensorProto.INT64, ["seq"]),
        helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "seq"]),
    ]
    output = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", hidden])
    graph = helper.make_graph(g.nodes, "minilm", inputs, [output], initializer=g.weights)
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid(CONTRIB, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 9
    return bytes(model.SerializeToString())


class OnnxBert:
    """An ONNX Runtime session over a model from `build_model`; `forward` matches
    `bert_numpy.forward` (within 1e-5 for the float graph, cosine >= 0.985 for int8)."""

    def __init__(self, model: bytes, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # one core per batch, in the calling thread: batches run one at a time, and the
        # other core is the event loop's
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            model, options, providers=["CPUExecutionProvider"], disabled_optimizers=SLOW_FUSIONS
        )

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import numpy as np

        positions = np.arange(ids.shape[1], dtype=np.int64)
        feeds = {"ids": ids, "positions": positions, "mask": mask.astype(np.float32)}
        (pooled,) = self.session.run(["pooled"], feeds)
        return l2_normalise(pooled)
