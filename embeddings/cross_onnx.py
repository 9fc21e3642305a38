"""BERT cross-encoders (a sentence-transformers ``CrossEncoder`` directory) under ONNX Runtime, no torch.

The graph is written with ``onnx.helper`` from the directory's ``model.safetensors`` (a
``BertForSequenceClassification``: encoder, then the [CLS] row through the pooler's dense + tanh and
the one-logit classifier), as :mod:`embeddings.minilm_onnx` writes the MiniLM embedder: no torch or
transformers is needed to build it, so ``ragd train reranker`` writes it next to the model and a
runtime without torch can build it from any such directory on first use. The encoder is written with
ONNX Runtime's fused CPU kernels (one ``Attention`` per layer, ``SkipLayerNormalization``, ``BiasGelu``):
ONNX Runtime does not recognise the attention of a hand-written graph as its own pattern, and the
unfused attention (reshapes, transposes, batched products, softmax) costs more than its projections.

int8: ONNX Runtime's dynamic quantisation of the encoder's linear layers (weights per output channel,
activations per tensor), the Q/K/V projection inside ``QAttention``. ``int8`` leaves each layer's FFN
down-projection (``fo``) in fp32, whose GELU inputs have outliers one activation scale cannot hold (the
same exception the e5 passage graph makes); ``int8-all`` quantises it too.

Pairs run one per ``session.run`` (batch size 1) on ``threads`` workers, each on one intra-op thread:
the pairs of one call are independent, so two workers keep two cores busy without the per-operator
hand-offs of intra-op threads, no pair is padded, and a pair's int8 score (its activation scales) does
not depend on which other pairs share its call.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from embeddings.onnx_graph import (
    GraphBuilder,
    LayerKeys,
    PaddedBatch,
    cpu_session,
    encoder,
    fused_encoder,
    padded_batches,
    quantize_int8,
)

__all__ = ["CrossEncoderOnnx", "Precision", "build_graph", "ensure_model", "graph_path", "write_graphs"]

FORMAT_VERSION = "2"
ONNX_DIR = "onnx"
Precision = Literal["fp32", "int8", "int8-all"]
_QUANTISED: dict[str, tuple[str, ...]] = {"int8": ("qkv", "ao", "fi"), "int8-all": ("qkv", "ao", "fi", "fo")}
"""The linear layers each int8 precision quantises (:func:`embeddings.onnx_graph.quantize_int8`)."""
Weights = dict[str, npt.NDArray[Any]]
_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


def _strip(weights: Weights) -> Weights:
    """Keys without the ``bert.`` prefix of ``BertForSequenceClassification``."""
    return {k.removeprefix("bert."): v for k, v in weights.items()}


def _dense(g: GraphBuilder, x: str, w: Weights, keys: Sequence[str], name: str) -> str:
    weight = np.concatenate([w[f"{k}.weight"] for k in keys]).T
    bias = np.concatenate([w[f"{k}.bias"] for k in keys])
    return g.op("Add", [g.op("MatMul", [x, g.const(f"{name}.w", weight)], name=name), g.const(f"{name}.b", bias)])


def _linear(w: Weights, keys: Sequence[str]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    weight = np.concatenate([w[f"{k}.weight"] for k in keys]).T
    return weight.astype(np.float32), np.concatenate([w[f"{k}.bias"] for k in keys]).astype(np.float32)


def build_graph(w: Weights, *, heads: int, eps: float = 1e-12, fused: bool = True) -> Any:
    """The cross-encoder as an ONNX model: ``input_ids``, ``token_type_ids`` (B, T) int64 and
    ``attention_mask`` (B, T) float32 in, ``logits`` (B, labels) out (before any activation).
    ``fused`` writes the encoder with ONNX Runtime's fused kernels (:func:`embeddings.onnx_graph.fused_encoder`),
    else with standard ops only (:func:`embeddings.onnx_graph.encoder`)."""
    from onnx import helper

    w = _strip(w)
    hidden = w["embeddings.word_embeddings.weight"].shape[1]
    layers = 1 + max(int(k.split(".")[2]) for k in w if k.startswith("encoder.layer."))
    g = GraphBuilder()

    def norm(x: str, key: str) -> str:
        return g.op("LayerNormalization", [x, g.const(f"{key}.gamma", w[f"{key}.weight"]),
                                           g.const(f"{key}.beta", w[f"{key}.bias"])], axis=-1, epsilon=eps)

    seq_len = g.op("Slice", [g.op("Shape", ["input_ids"]), g.const("one", [1], np.int64),
                             g.const("two", [2], np.int64)])
    positions = g.op("Slice", [g.const("emb.pos", w["embeddings.position_embeddings.weight"]),
                               g.const("zero", [0], np.int64), seq_len, g.const("axis0", [0], np.int64)])
    words = g.op("Gather", [g.const("emb.word", w["embeddings.word_embeddings.weight"]), "input_ids"], axis=0)
    types = g.op("Gather", [g.const("emb.type", w["embeddings.token_type_embeddings.weight"]), "token_type_ids"],
                 axis=0)
    x = norm(g.op("Add", [g.op("Add", [words, positions]), types]), "embeddings.LayerNorm")
    keys = [LayerKeys(f"l{i}.", (f"{p}attention.self.query", f"{p}attention.self.key", f"{p}attention.self.value"),
                      f"{p}attention.output.dense", f"{p}attention.output.LayerNorm", f"{p}intermediate.dense",
                      f"{p}output.dense", f"{p}output.LayerNorm")
            for i, p in ((i, f"encoder.layer.{i}.") for i in range(layers))]
    if fused:
        x = fused_encoder(g, x, heads=heads, layers=keys, linear=lambda names: _linear(w, names), eps=eps,
                          norm=lambda key: (g.const(f"{key}.gamma", w[f"{key}.weight"]),
                                            g.const(f"{key}.beta", w[f"{key}.bias"])))
    else:
        x = encoder(g, x, hidden=hidden, heads=heads, layers=keys,
                    dense=lambda x, names, name: _dense(g, x, w, names, name), norm=norm)
    first = g.op("Squeeze", [g.op("Gather", [x, g.const("cls", [0], np.int64)], axis=1),  # (B, H): the [CLS] row
                             g.const("axis1_sq", [1], np.int64)])
    pooled = g.op("Tanh", [_dense(g, first, w, ["pooler.dense"], "pooler")])
    logits = _dense(g, pooled, w, ["classifier"], "classifier")
    labels = w["classifier.weight"].shape[0]
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
    return g.model("cross-encoder", [("input_ids", "int64", ["batch", "tokens"]),
                                      ("token_type_ids", "int64", ["batch", "tokens"]),
                                      ("attention_mask", "float", ["batch", "tokens"])],
                   [("logits", ["batch", labels])], microsoft_ops=fused)


def _config(model_dir: Path) -> dict[str, Any]:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return config if isinstance(config, dict) else {}


def graph_path(model_dir: Path, precision: Precision) -> Path:
    """Where ``ragd train reranker`` writes the graph of ``precision`` inside a model directory (the name
    carries the graph format, so a graph of an older format is rebuilt rather than loaded)."""
    return model_dir / ONNX_DIR / f"model-{precision}-v{FORMAT_VERSION}.onnx"


def _write(model_dir: Path, target: Path, precision: Precision) -> None:
    import onnx
    import safetensors.numpy

    target.parent.mkdir(parents=True, exist_ok=True)
    float_target = target if precision == "fp32" else target.with_name(target.name + ".fp32")
    tmp = float_target.with_name(f"{float_target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    config = _config(model_dir)
    weights = safetensors.numpy.load_file(str(model_dir / "model.safetensors"))
    onnx.save(build_graph(weights, heads=int(config.get("num_attention_heads", 12)),
                          eps=float(config.get("layer_norm_eps", 1e-12))), str(tmp))
    tmp.replace(float_target)
    if precision != "fp32":
        quantize_int8(float_target, target, linear=_QUANTISED[precision])
        float_target.unlink()


def ensure_model(model_dir: Path, precision: Precision, cache_dir: Path) -> Path:
    """The graph of ``model_dir`` at ``precision``: the one written inside it (``onnx/``) when present,
    else one built under ``cache_dir`` on first use, named by a digest of the weights' bytes."""
    inside = graph_path(model_dir, precision)
    if inside.exists():
        return inside
    digest = hashlib.sha256(FORMAT_VERSION.encode() + (model_dir / "model.safetensors").read_bytes())
    target = cache_dir / f"cross-encoder-{digest.hexdigest()[:16]}-{precision}.onnx"
    if not target.exists():
        _write(model_dir, target, precision)
    return target


def write_graphs(model_dir: Path) -> list[Path]:
    """The fp32 and int8 graphs of a cross-encoder directory into its ``onnx/`` folder (what training calls)."""
    out = []
    for precision in ("fp32", "int8"):
        target = graph_path(model_dir, precision)
        _write(model_dir, target, precision)
        out.append(target)
    return out


def _activation(model_dir: Path, config: dict[str, Any]) -> str:
    """The activation sentence-transformers' ``CrossEncoder.predict`` applies to the logits, as the model
    directory names it (its default: sigmoid for one label)."""
    saved = None
    st_config = model_dir / "config_sentence_transformers.json"
    if st_config.exists():
        saved = json.loads(st_config.read_text(encoding="utf-8")).get("activation_fn")
    section = config.get("sentence_transformers")
    saved = saved or (section.get("activation_fn") if isinstance(section, dict) else None)
    saved = saved or config.get("sbert_ce_default_activation_function")
    if saved is None:
        return "sigmoid" if len(config.get("id2label", {"0": ""})) == 1 else "identity"
    return "sigmoid" if str(saved).endswith("Sigmoid") else "identity"


class CrossEncoderOnnx:
    """Scores (query, passage) pairs with a cross-encoder directory under ONNX Runtime: pairs tokenised
    together (truncating the longer side first), in batches of ``batch_size`` (padded and masked when
    above 1), run by ``threads`` workers with one intra-op thread each, longest batches first.

    Loads lazily, once (thread-safe); ``scores`` may be called from several threads, which then share the
    workers (at most ``threads`` cores in all).
    """

    def __init__(self, model_dir: Path, *, cache_dir: Path, precision: Precision = "int8", threads: int = 1,
                 max_length: int | None = None, batch_size: int = 1) -> None:
        self.model_dir = model_dir
        self.precision = precision
        self._cache_dir = cache_dir
        self._threads = threads
        self._max_length = max_length
        self._batch_size = batch_size
        self._state: tuple[Any, Any, str, ThreadPoolExecutor] | None = None
        self._lock = threading.Lock()

    def _model_max_length(self) -> int:
        """The model's own limit: its tokenizer's ``model_max_length`` (the length ``ragd train reranker``
        trained at), capped by its position table."""
        config = _config(self.model_dir)
        limit = int(config.get("max_position_embeddings", 512))
        tok_config = self.model_dir / "tokenizer_config.json"
        if tok_config.exists():
            stated = json.loads(tok_config.read_text(encoding="utf-8")).get("model_max_length")
            if isinstance(stated, int) and 0 < stated < limit:
                return stated
        return limit

    def load(self) -> None:
        with self._lock:
            if self._state is None:
                from tokenizers import Tokenizer

                path = ensure_model(self.model_dir, self.precision, self._cache_dir)
                tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
                tokenizer.no_padding()
                tokenizer.enable_truncation(self.max_length, strategy="longest_first")
                # one thread per run, runs side by side; shapes are bounded by max_length, so the arena's
                # buffers stay small and save each run the allocation of its activations
                session = cpu_session(path, 1, arena=True)
                workers = ThreadPoolExecutor(self._threads, thread_name_prefix="cross-encoder")
                self._state = (tokenizer, session, _activation(self.model_dir, _config(self.model_dir)), workers)

    def close(self) -> None:
        """Stops the workers (a later call loads again)."""
        with self._lock:
            if self._state is not None:
                self._state[3].shutdown(wait=True)
                self._state = None

    @property
    def loaded(self) -> bool:
        return self._state is not None

    @property
    def max_length(self) -> int:
        """Tokens of one pair after truncation: ``max_length``, else the model's own limit."""
        return self._max_length or self._model_max_length()

    def scores(self, query: str, passages: Sequence[str]) -> npt.NDArray[np.float32]:
        """One score per passage, the last logit after the model's activation (higher: more relevant)."""
        self.load()
        assert self._state is not None
        tokenizer, session, activation, workers = self._state
        encodings = tokenizer.encode_batch([(query, p) for p in passages], add_special_tokens=True)
        batches = list(padded_batches(encodings, self._batch_size))[::-1]  # longest first: the last to
        # start is short, so the workers finish close together

        def run(batch: PaddedBatch) -> npt.NDArray[np.float32]:
            feeds = dict(zip(_INPUTS, (batch.ids, batch.type_ids, batch.mask), strict=True))
            (logits,) = session.run(["logits"], feeds)
            return np.asarray(logits[:, -1], dtype=np.float32)

        out = np.zeros(len(passages), dtype=np.float32)
        for batch, logits in zip(batches, workers.map(run, batches), strict=True):
            out[batch.rows] = logits
        if activation == "sigmoid":
            out = (1.0 / (1.0 + np.exp(-out))).astype(np.float32)
        return out
