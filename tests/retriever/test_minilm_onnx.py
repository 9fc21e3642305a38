"""The ONNX runtime of all-MiniLM-L6-v2 against sentence-transformers under torch (real model, real graph)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from embeddings.minilm_onnx import MiniLMOnnxEmbedder, minilm_model_path

TEXTS = [
    "What is the capital of France?",
    "hello",
    "Vitamin D deficiency is associated with an increased risk of respiratory infections.",
    "How do I reset my password if I no longer have access to the email address on the account?",
    "0-dimensional biomaterials lack inductive properties.",
    "The mitochondrion is the powerhouse of the cell; it produces ATP through oxidative phosphorylation.",
    "Café prices in Zürich rose 12% in 2023 — naïve estimates were off.",
    "Refunds are issued within 14 days of receiving the returned item, minus shipping costs.",
    "Transformers use self-attention to relate every token of a sequence to every other token.",
    # longer than the model's 256 tokens: both sides truncate it
    " ".join(f"Sentence {i} of a long document about protein folding, enzymes and cell signalling."
             for i in range(40)),
]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("minilm_models")


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> MiniLMOnnxEmbedder:
    model = MiniLMOnnxEmbedder(models_dir, batch_size=4)
    model.warm_up()
    return model


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_model_path()), device="cpu")
    return np.asarray(model.encode(TEXTS, normalize_embeddings=True), dtype=np.float32)


def test_the_long_text_is_truncated() -> None:
    tokenizer = Tokenizer.from_file(str(minilm_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    assert len(tokenizer.encode(TEXTS[-1]).ids) > 300


def test_mixed_length_batch_matches_sentence_transformers(embedder: MiniLMOnnxEmbedder,
                                                          reference: np.ndarray) -> None:
    vectors = embedder.embed_passages(TEXTS)  # batch_size 4: three padded batches of similar lengths
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * reference).sum(axis=1).min() >= 0.999


def test_one_query_at_a_time_matches_the_batch(embedder: MiniLMOnnxEmbedder, reference: np.ndarray) -> None:
    singles = np.concatenate([embedder.embed_queries([text]) for text in TEXTS])
    assert (singles * reference).sum(axis=1).min() >= 0.999
    assert (singles * embedder.embed_queries(TEXTS)).sum(axis=1).min() >= 0.9999  # padding changes nothing


def test_empty_input(embedder: MiniLMOnnxEmbedder) -> None:
    assert embedder.embed_queries([]).shape == (0, 384)
    assert embedder.embed_passages([]).shape == (0, 384)


def test_the_cached_graph_is_reused(embedder: MiniLMOnnxEmbedder, models_dir: Path) -> None:
    (graph,) = models_dir.glob("*.onnx")
    built = graph.stat().st_mtime_ns
    again = MiniLMOnnxEmbedder(models_dir, threads=2)
    again.warm_up()
    assert [p.name for p in models_dir.iterdir()] == [graph.name]  # no second file, no leftover tmp
    assert graph.stat().st_mtime_ns == built
    assert (again.embed_queries(TEXTS[:3]) * embedder.embed_queries(TEXTS[:3])).sum(axis=1).min() >= 0.9999
