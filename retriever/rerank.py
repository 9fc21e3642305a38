"""Cross-encoder reranking of the fused candidates (off unless ``reranker_model`` is set).

The head's final score blends the cross-encoder with the fusion it reorders: ``w * z(cross) + (1 - w) *
z(fused)``, z-scores over the head. A public reranker trained on millions of pairs earns ``w = 1`` (its own
order); one that ``ragd train reranker`` fitted on a few hundred queries knows less than the hybrid
retrieval it reorders, and its training picks ``w`` on held-out queries (0 when it does not help), so a
weak reranker cannot lower the ranking it was given. Such a model also records the languages of its
training queries, and queries in other languages keep the fused order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from embeddings.cross_onnx import CrossEncoderOnnx, Precision
from services.settings import default_data_dir

__all__ = ["METADATA_FILE", "CrossEncoderReranker", "blend_scores", "meta_blend", "meta_languages",
           "read_training_meta", "rerank_head", "trained_blend", "trained_languages"]

METADATA_FILE = "ragd_training.json"
T = TypeVar("T")


def _z(values: Sequence[float]) -> list[float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return [(v - mean) / std if std > 0 else 0.0 for v in values]


def blend_scores(fused: Sequence[float], cross: Sequence[float], weight: float) -> list[float]:
    """``weight * z(cross) + (1 - weight) * z(fused)``; ``weight`` 1 keeps the cross-encoder's raw scores."""
    if len(fused) != len(cross):
        raise ValueError("one cross-encoder score per fused candidate")
    if weight >= 1.0 or not cross:
        return [float(c) for c in cross]
    return [weight * c + (1.0 - weight) * f for f, c in zip(_z(fused), _z(cross), strict=True)]


def rerank_head(head: Sequence[tuple[T, float]], cross: Sequence[float], weight: float) -> list[tuple[T, float]]:
    """``head`` (item, fused score) reordered by :func:`blend_scores`, each item with its final score."""
    final = blend_scores([score for _, score in head], cross, weight)
    return sorted(zip((item for item, _ in head), final, strict=True), key=lambda pair: -pair[1])


def read_training_meta(model_path_or_id: str | Path) -> dict[str, Any] | None:
    """The ``ragd_training.json`` a ragd trainer wrote next to a model (None: none there, or unreadable)."""
    try:
        meta = json.loads((Path(model_path_or_id) / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _entry(meta: dict[str, Any] | None, section: str, key: str) -> Any:
    part = (meta or {}).get(section)
    return part.get(key) if isinstance(part, dict) else None


def meta_blend(meta: dict[str, Any] | None) -> float | None:
    """The blend weight ``ragd train reranker`` chose, from its metadata."""
    value = _entry(meta, "scores", "blend")
    return float(value) if isinstance(value, int | float) else None


def meta_languages(meta: dict[str, Any] | None) -> frozenset[str] | None:
    """The query languages a ragd-trained model saw (None: not recorded, so any)."""
    value = _entry(meta, "data", "query_languages")
    return frozenset(str(v) for v in value) if isinstance(value, list) and value else None


def trained_blend(model_path_or_id: str) -> float | None:
    """The blend weight ``ragd train reranker`` chose for this model, if it made it."""
    return meta_blend(read_training_meta(model_path_or_id))


def trained_languages(model_path_or_id: str) -> frozenset[str] | None:
    """The query languages a model of ``ragd train reranker`` was trained on (None: not recorded, any)."""
    return meta_languages(read_training_meta(model_path_or_id))


class CrossEncoderReranker:
    """A cross-encoder directory (``model.safetensors`` and ``tokenizer.json`` of a BERT
    ``CrossEncoder``, as ``ragd train reranker`` writes) scoring (query, passage) pairs under ONNX
    Runtime (:class:`embeddings.cross_onnx.CrossEncoderOnnx`, no torch); loads lazily, once.
    ``precision`` "int8" quantises the encoder's linear layers except the FFN down-projections, "int8-all"
    those too, "fp32" keeps the trained weights; the graph
    is the one inside the directory (``onnx/``), else one built under ``models_dir`` on first load."""

    def __init__(self, model_path_or_id: str, *, models_dir: Path | None = None, precision: Precision = "int8",
                 threads: int = 2,
                 batch_size: int = 1, max_length: int | None = None, blend: float | None = None) -> None:
        self.model_path_or_id = model_path_or_id
        meta = read_training_meta(model_path_or_id)  # read once: blend and languages
        chosen = meta_blend(meta) if blend is None else blend
        self.blend = 1.0 if chosen is None else chosen
        self.languages = meta_languages(meta)
        self._model = CrossEncoderOnnx(Path(model_path_or_id), cache_dir=models_dir or default_data_dir() / "models",
                                       precision=precision,
                                       threads=threads, max_length=max_length, batch_size=batch_size)

    def load(self) -> None:
        self._model.load()

    def serves(self, language: str) -> bool:
        """False for a query language the model was not trained on (its scores would be noise: the
        packaged MiniLM backbone has no Korean vocabulary); such a query keeps the fused order."""
        return self.languages is None or language in self.languages

    @property
    def loaded(self) -> bool:
        return self._model.loaded

    @property
    def max_length(self) -> int:
        """Tokens of one (query, passage) pair (loads the model)."""
        return self._model.max_length

    def scores(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage (higher is more relevant)."""
        if not passages:
            return []
        return [float(s) for s in self._model.scores(query, passages)]
