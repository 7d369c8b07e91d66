"""all-MiniLM-L6-v2 as an ONNX graph built from the packaged weights, run by ONNX Runtime.

The graph is the computation of `gateway.cache.bert_numpy.forward` written with standard
ONNX operators (opset 17: Gather, MatMul, LayerNormalization, Softmax, Erf), built in
memory at load from the same safetensors weights: nothing is exported, downloaded or
written to disk. Its outputs are the mean-pooled sentence vectors before normalisation;
`OnnxBert.forward` normalises them. Vectors equal the numpy pass's within 1e-5
(tests/cache/test_embedders.py), and a batch of short texts runs several times faster
(benchmarks/bench_cache.py --only embed).

`onnx` and `onnxruntime` are imported only here, and only when the local embedder loads.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from gateway.cache.bert_numpy import Bert, Layer
from gateway.cache.vectors import l2_normalise

if TYPE_CHECKING:
    import numpy as np

OPSET = 17  # LayerNormalization


class _Graph:
    """Collects nodes and initialisers; each helper returns its output's name."""

    def __init__(self) -> None:
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
        return self.op("Add", self.op("MatMul", x, self.const(w)), self.const(b))

    def layer_norm(self, x: str, g: np.ndarray, b: np.ndarray, eps: float) -> str:
        return self.op("LayerNormalization", x, self.const(g), self.const(b), axis=-1, epsilon=eps)


def _ints(values: list[int]) -> np.ndarray:
    import numpy as np

    return np.array(values, dtype=np.int64)


def _gelu(g: _Graph, x: str) -> str:
    import numpy as np

    scaled = g.op("Mul", x, g.const(np.array(1 / math.sqrt(2), dtype=np.float32)))
    one_plus = g.op("Add", g.op("Erf", scaled), g.const(np.array(1.0, dtype=np.float32)))
    return g.op("Mul", g.op("Mul", x, one_plus), g.const(np.array(0.5, dtype=np.float32)))


def _attention(g: _Graph, x: str, bias: str, layer: Layer, heads: int, hidden: int) -> str:
    import numpy as np

    size = hidden // heads
    qkv = g.op(
        "Reshape", g.linear(x, layer.qkv_w, layer.qkv_b), g.const(_ints([0, 0, 3, heads, size]))
    )
    parts = [g.op("Gather", qkv, g.const(np.array(i, dtype=np.int64)), axis=2) for i in range(3)]
    q = g.op("Transpose", parts[0], perm=[0, 2, 1, 3])  # (batch, heads, seq, size)
    k = g.op("Transpose", parts[1], perm=[0, 2, 3, 1])  # (batch, heads, size, seq)
    v = g.op("Transpose", parts[2], perm=[0, 2, 1, 3])
    scale = g.const(np.array(1 / math.sqrt(size), dtype=np.float32))
    scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), bias)
    context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    merged = g.op(
        "Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), g.const(_ints([0, 0, hidden]))
    )
    return g.linear(merged, layer.out_w, layer.out_b)


def build_model(bert: Bert) -> bytes:
    """The serialised ONNX model: inputs ids, positions (int64) and mask (float32, both
    (batch, seq)); output `pooled` (batch, hidden), the mean over real tokens."""
    import numpy as np
    from onnx import TensorProto, helper

    g = _Graph()
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
        up = _gelu(g, g.linear(x, layer.up_w, layer.up_b))
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


class OnnxBert:
    """An ONNX Runtime session over the graph; `forward` matches `bert_numpy.forward`."""

    def __init__(self, bert: Bert, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # one core per batch: batches run one at a time
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            build_model(bert), options, providers=["CPUExecutionProvider"]
        )

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import numpy as np

        positions = np.arange(ids.shape[1], dtype=np.int64)
        feeds = {"ids": ids, "positions": positions, "mask": mask.astype(np.float32)}
        (pooled,) = self.session.run(["pooled"], feeds)
        return l2_normalise(pooled)
