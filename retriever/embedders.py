"""Embedders: text -> L2-normalised float32 vectors. Models load lazily, once, on first use."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from embeddings.minilm_onnx import MiniLMOnnxEmbedder
from embeddings.protocol import Embedder, TokenCounting, embeds_as, l2_normalise
from embeddings.registry import RuntimeOptions, build_runtime
from embeddings.sentence_transformers import SentenceTransformerEmbedder
from retriever.rerank import METADATA_FILE, meta_languages, read_training_meta
from retriever.settings import RetrieverSettings
from retriever.text import detect_language

__all__ = [
    "PACKAGED_ENGLISH",
    "QUERY_SIDE_KIND",
    "Embedder",
    "QuerySideEmbedder",
    "TokenCounting",
    "build_embedder",
    "build_english_embedder",
    "l2_normalise",
]

Vectors = npt.NDArray[np.float32]


QUERY_SIDE_KIND = "query_side"


class QuerySideEmbedder:
    """Queries through a query encoder made by ``ragd train embedder --query-side``; passages and the name
    through ``base``, whose passage vectors the index holds (so nothing is re-embedded). A query in a language
    the model was not trained on goes through ``base`` too (a query side trained on English claims lowers
    the scores of Korean questions).

    Refuses, at construction, a model trained against another embedder's passages.
    """

    def __init__(self, base: Embedder, model_dir: Path, *, threads: int = 1) -> None:
        meta = read_training_meta(model_dir)
        if meta is None:
            raise ValueError(f"{model_dir}: no {METADATA_FILE} of ragd train embedder --query-side")
        extra = meta.get("settings", {}).get("extra", {})
        if meta.get("kind") != QUERY_SIDE_KIND or "passage_embedder" not in extra:
            raise ValueError(f"{model_dir} is not a query-side model of ragd train embedder --query-side")
        if not embeds_as(base, str(extra["passage_embedder"])):
            raise ValueError(f"{model_dir} was trained against the passages of {extra['passage_embedder']}, "
                             f"not of {base.name}")
        self.base = base
        self.name = base.name
        self.model_dir = model_dir
        self._prefix = str(extra.get("query_prefix", ""))
        self.languages = meta_languages(meta)  # None: not recorded, any
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(self.model_dir), device="cpu")
                if self.max_tokens:  # trained on short inputs for speed; serve as long queries as the base
                    model.max_seq_length = self.max_tokens
                self._model = model
            return self._model

    @property
    def dim(self) -> int:
        self._loaded()  # loads with the passage model, at warm-up
        return self.base.dim

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        import torch

        out = np.zeros((len(texts), self.base.dim), dtype=np.float32)
        served = [self.serves(detect_language(text)) for text in texts]
        trained = [i for i, yes in enumerate(served) if yes]
        others = [i for i, yes in enumerate(served) if not yes]
        if trained:
            torch.set_num_threads(self._threads)  # OpenMP: the calling thread only, as e5's query path does
            vectors = self._loaded().encode([self._prefix + texts[i] for i in trained], normalize_embeddings=True,
                                            convert_to_numpy=True, show_progress_bar=False)
            out[trained] = l2_normalise(vectors)
        if others:
            out[others] = self.base.embed_queries([texts[i] for i in others])
        return out

    def serves(self, language: str) -> bool:
        """True for a query language the model was trained on (or any, when none is recorded)."""
        return self.languages is None or language in self.languages

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self.base.embed_passages(texts)

    @property
    def max_tokens(self) -> int:
        return self.base.max_tokens if isinstance(self.base, TokenCounting) else 0

    def count_tokens(self, texts: Sequence[str], *, query: bool) -> list[int]:
        """The base's count: the query side keeps its tokenizer (and its prefix, in the metadata)."""
        if not isinstance(self.base, TokenCounting):
            raise TypeError(f"{self.base.name} cannot count tokens")
        return self.base.count_tokens(texts, query=query)


PACKAGED_ENGLISH = "all-MiniLM-L6-v2"


@cache
def _packaged_english(models_dir: Path, batch_size: int) -> Embedder:
    """One per process and options: every retriever in a process shares the ONNX session (~100 MB)."""
    # ONNX Runtime on one thread: sentence-transformers' vectors, one query faster than under torch
    packaged = MiniLMOnnxEmbedder(models_dir, threads=1, batch_size=batch_size)
    packaged.name = PACKAGED_ENGLISH
    return packaged


def build_english_embedder(settings: RetrieverSettings) -> Embedder | None:
    """The English side's embedder (``english_dense``), not loaded yet; None when that side is off.

    Its ``name`` is the model's, not the runtime's or the install path's, so an index written on one
    machine is read on another."""
    if not settings.english_dense:
        return None
    model = settings.english_embedder_model
    if model is None:
        return _packaged_english(settings.e5_onnx.models_dir, settings.embed_batch_size)
    return SentenceTransformerEmbedder(model, batch_size=settings.embed_batch_size)


def build_embedder(settings: RetrieverSettings) -> Embedder:
    """The embedder of the runtime ``settings.embedder_backend`` names (not loaded yet), with the query
    encoder of ``settings.query_embedder_model`` in front when one is set."""
    embedder = build_runtime(settings.embedder_backend, RuntimeOptions(
        onnx=settings.e5_onnx, torch=settings.e5_torch, model=settings.embedder_model,
        batch_size=settings.embed_batch_size, query_prefix=settings.query_prefix,
        passage_prefix=settings.passage_prefix))
    if settings.query_embedder_model:
        return QuerySideEmbedder(embedder, Path(settings.query_embedder_model), threads=settings.e5_torch.query_threads)
    return embedder
