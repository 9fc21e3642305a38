"""Cross-encoder reranking of the fused candidates (off unless ``reranker_model`` is set)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["CrossEncoderReranker"]


class CrossEncoderReranker:
    """``sentence_transformers.CrossEncoder`` scoring (query, passage) pairs; loads lazily, once."""

    def __init__(self, model_path_or_id: str, *, batch_size: int = 32, max_length: int = 512) -> None:
        self.model_path_or_id = model_path_or_id
        self.batch_size = batch_size
        self.max_length = max_length
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(self.model_path_or_id, device="cpu", max_length=self.max_length)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def scores(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage (higher is more relevant)."""
        if not passages:
            return []
        self.load()
        raw = self._model.predict([(query, p) for p in passages], batch_size=self.batch_size,
                                  show_progress_bar=False, convert_to_numpy=True)
        return [float(s) for s in raw.reshape(len(passages), -1)[:, -1]]
