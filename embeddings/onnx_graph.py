"""A small builder for ONNX graphs written op by op, and the BERT encoder both ragd graphs share
(``embeddings/e5_onnx.py``, ``embeddings/minilm_onnx.py``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Dense", "GraphBuilder", "LayerKeys", "Linear", "Norm", "PaddedBatch", "cpu_session", "encoder",
           "encoder_and_mean_pool", "fused_encoder", "padded_batches", "quantize_int8"]

MICROSOFT = "com.microsoft"


class GraphBuilder:
    """Names every node and initializer of an ONNX graph under construction."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, name: str, value: npt.ArrayLike, dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], *, name: str | None = None, **attrs: Any) -> str:
        """Add a one-output node; returns the name of its output."""
        from onnx import helper

        node_name = name or f"{op_type.lower()}_{len(self.nodes)}"
        output = f"{node_name}_out"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=node_name, **attrs))
        return output

    def model(self, name: str, inputs: Sequence[tuple[str, str, Sequence[str | int]]],
              outputs: Sequence[tuple[str, Sequence[str | int]]], *, microsoft_ops: bool = False) -> Any:
        """The finished model: ``(name, "float" or "int64", shape)`` inputs, float ``(name, shape)`` outputs,
        opset 17 (and ONNX Runtime's ``com.microsoft`` domain when ``microsoft_ops``), IR version 8."""
        from onnx import TensorProto, helper

        types = {"float": TensorProto.FLOAT, "int64": TensorProto.INT64}
        graph = helper.make_graph(
            self.nodes, name, [helper.make_tensor_value_info(n, types[t], list(dims)) for n, t, dims in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(dims)) for n, dims in outputs], self.initializers)
        opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.microsoft", 1)] if microsoft_ops else [])
        model = helper.make_model(graph, producer_name="ragd", opset_imports=opsets)
        model.ir_version = 8
        return model


Dense = Callable[[str, Sequence[str], str], str]
"""``(x, weight keys stacked along the outputs, node name) -> output``: one linear layer."""
Norm = Callable[[str, str], str]
"""``(x, weight key) -> output``: one layer norm."""
Linear = Callable[[Sequence[str]], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]
"""``weight keys stacked along the outputs -> (weight (in, out), bias (out,))``: one linear layer's arrays."""


@dataclass(frozen=True)
class PaddedBatch:
    """Tokenised texts of similar length, padded to the longest: ``rows`` are their positions in the input."""

    rows: list[int]
    ids: npt.NDArray[np.int64]
    type_ids: npt.NDArray[np.int64]
    mask: npt.NDArray[np.float32]


def padded_batches(encodings: Sequence[Any], batch_size: int) -> Iterator[PaddedBatch]:
    """``tokenizers`` encodings in batches of at most ``batch_size``, sorted by length so that little of
    each batch is padding; the attention mask is 1.0 over each row's tokens."""
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(encodings[i].ids) for i in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.float32)
        for row, i in enumerate(rows):
            n = len(encodings[i].ids)
            ids[row, :n], types[row, :n], mask[row, :n] = encodings[i].ids, encodings[i].type_ids, 1.0
        yield PaddedBatch(rows, ids, types, mask)


@dataclass(frozen=True)
class LayerKeys:
    """Weight keys of one BERT encoder layer, and the prefix its node names take."""

    prefix: str
    qkv: tuple[str, str, str]
    attention_out: str
    attention_norm: str
    ffn_in: str
    ffn_out: str
    output_norm: str


def encoder(g: GraphBuilder, x: str, *, hidden: int, heads: int, layers: Sequence[LayerKeys],
            dense: Dense, norm: Norm) -> str:
    """BERT encoder layers over the embedded tokens ``x`` (B, T, H), masked by the graph input
    ``attention_mask`` (B, T) float32; returns the last layer's output (B, T, H)."""
    from onnx import helper

    # additive attention mask (B, 1, 1, T): 0 where a token is, -1e4 on padding
    mask = g.op("Unsqueeze", ["attention_mask", g.const("axes12", [1, 2], np.int64)])
    mask_bias = g.op("Mul", [g.op("Sub", [g.const("one_f", 1.0), mask]), g.const("neg", -1e4)])
    split_heads = g.const("shape_heads", [0, 0, heads, hidden // heads], np.int64)
    merge_heads = g.const("shape_hidden", [0, 0, hidden], np.int64)
    scale = g.const("scale", 1 / np.sqrt(hidden // heads))
    half, sqrt2 = g.const("half", 0.5), g.const("sqrt2", np.sqrt(2))
    for keys in layers:
        p = keys.prefix
        qkv = dense(x, keys.qkv, f"{p}qkv")
        sections = g.const(f"{p}split", [hidden] * 3, np.int64)
        g.nodes.append(helper.make_node("Split", [qkv, sections], [f"{p}{k}_flat" for k in "qkv"], axis=-1,
                                        name=f"{p}split"))
        q, k, v = (g.op("Transpose", [g.op("Reshape", [f"{p}{name}_flat", split_heads])], perm=perm)
                   for name, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])))
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k], name=f"{p}scores"), scale]), mask_bias])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v], name=f"{p}context")
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        x = norm(g.op("Add", [x, dense(context, [keys.attention_out], f"{p}ao")]), keys.attention_norm)
        inner = dense(x, [keys.ffn_in], f"{p}fi")
        gelu = g.op("Mul", [g.op("Mul", [inner, half]),
                            g.op("Add", [g.op("Erf", [g.op("Div", [inner, sqrt2])]), "one_f"])])
        x = norm(g.op("Add", [x, dense(gelu, [keys.ffn_out], f"{p}fo")]), keys.output_norm)
    return x


def fused_encoder(g: GraphBuilder, x: str, *, heads: int, layers: Sequence[LayerKeys], linear: Linear,
                  norm: Callable[[str], tuple[str, str]], eps: float) -> str:
    """:func:`encoder` written with ONNX Runtime's fused CPU kernels (``com.microsoft`` domain): one
    ``Attention`` per layer (the Q/K/V projection, scaled masked softmax and context in one kernel, masked
    by ``attention_mask`` as 0/1 int32), ``SkipLayerNormalization`` for each residual add + bias + layer
    norm, ``BiasGelu`` for the FFN activation (erf GELU). The linear layers left as plain ``MatMul`` are
    named ``<prefix>ao``, ``<prefix>fi`` and ``<prefix>fo``, the attention ``<prefix>qkv``, as
    :func:`quantize_int8` expects. ``norm(key) -> (gamma, beta)`` names a layer norm's weights."""
    from onnx import TensorProto

    mask = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)

    def matmul(x: str, keys: Sequence[str], name: str) -> tuple[str, str]:
        weight, bias = linear(keys)
        return g.op("MatMul", [x, g.const(f"{name}.w", weight)], name=name), g.const(f"{name}.b", bias)

    def residual(x: str, out: tuple[str, str], key: str, name: str) -> str:
        """LayerNorm(x + out + bias): the residual add of a linear layer's output ``(out, bias)``."""
        gamma, beta = norm(key)
        return g.op("SkipLayerNormalization", [out[0], x, gamma, beta, out[1]], name=name, domain=MICROSOFT,
                    epsilon=eps)

    for keys in layers:
        p = keys.prefix
        weight, bias = linear(keys.qkv)
        context = g.op("Attention", [x, g.const(f"{p}qkv.w", weight), g.const(f"{p}qkv.b", bias), mask],
                       name=f"{p}qkv", domain=MICROSOFT, num_heads=heads)
        x = residual(x, matmul(context, [keys.attention_out], f"{p}ao"), keys.attention_norm, f"{p}ao_norm")
        inner, inner_bias = matmul(x, [keys.ffn_in], f"{p}fi")
        gelu = g.op("BiasGelu", [inner, inner_bias], name=f"{p}gelu", domain=MICROSOFT)
        x = residual(x, matmul(gelu, [keys.ffn_out], f"{p}fo"), keys.output_norm, f"{p}fo_norm")
    return x


def encoder_and_mean_pool(g: GraphBuilder, x: str, *, hidden: int, heads: int, layers: Sequence[LayerKeys],
                          dense: Dense, norm: Norm) -> None:
    """:func:`encoder`, then mean pooling over real tokens into the graph output ``pooled`` (B, H)."""
    from onnx import helper

    x = encoder(g, x, hidden=hidden, heads=heads, layers=layers, dense=dense, norm=norm)
    weights3 = g.op("Unsqueeze", ["attention_mask", g.const("axis2", [2], np.int64)])
    summed = g.op("ReduceSum", [g.op("Mul", [x, weights3]), g.const("axis1", [1], np.int64)], keepdims=0)
    count = g.op("ReduceSum", [weights3, "axis1"], keepdims=0)
    g.nodes.append(helper.make_node("Div", [summed, count], ["pooled"], name="mean_pool"))


def quantize_int8(source: Path, target: Path, *, linear: Sequence[str] = ("qkv", "ao", "fi")) -> Path:
    """The float graph ``source`` written to ``target`` with its encoder's linear layers int8 (ONNX Runtime's
    dynamic quantisation: weights per output channel, activations per tensor). ``linear`` names the layers
    quantised: the ``MatMul`` or fused ``Attention`` nodes named ``l<i>.<name>``. The default leaves each
    layer's FFN down-projection (``l<i>.fo``) in fp32: its GELU inputs have outliers one activation scale
    cannot hold."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node
             if n.op_type in ("MatMul", "Attention") and n.name.startswith("l") and n.name.split(".")[-1] in linear]
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    # ONNX shape inference knows no com.microsoft op, so past a fused op no tensor has an inferred type;
    # every tensor of these graphs is float
    quantize_dynamic(source, tmp, per_channel=True, weight_type=QuantType.QInt8, nodes_to_quantize=names,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    tmp.replace(target)  # atomic: a concurrent builder writes the same bytes
    return target


def cpu_session(path: Path, threads: int, *, arena: bool = False) -> Any:
    """An ONNX Runtime CPU session of ``path`` as ragd runs its graphs: ``threads`` intra-op threads that
    sleep when idle (no spinning on shared cores), warnings off, and by default no memory arena: batches
    of padded passages vary in shape, and an arena keeps the largest one's buffers for the life of the
    process (gigabytes after an ingest); without it, each run's buffers go back to the system. ``arena``
    suits a graph whose inputs are small and bounded: it saves each run allocating its activations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
