"""``ragd train reranker`` / ``ragd train embedder`` run a few steps on the fixture and save loadable models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from services.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "beir_tiny"


@pytest.fixture(scope="module")
def common(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    cache = tmp_path_factory.mktemp("train-cache")
    return ["--dataset", str(FIXTURE), "--split", "train", "--cache-dir", str(cache), "--max-steps", "2",
            "--batch-size", "4", "--max-length", "64", "--set", "embedder_backend=sentence-transformers",
            "--no-progress"]


def test_train_reranker_writes_a_cross_encoder(tmp_path: Path, common: list[str]) -> None:
    from sentence_transformers import CrossEncoder

    from retriever.rerank import CrossEncoderReranker
    from retriever.training import BLEND_GRID

    out = tmp_path / "reranker"
    assert main(["train", "reranker", "--out", str(out), "--negatives", "3", "--dev-fraction", "0.5",
                 *common]) == 0
    meta = json.loads((out / "ragd_training.json").read_text())
    assert meta["kind"] == "reranker" and meta["scores"]["steps"] == 2
    assert meta["data"]["queries"] == 6 and meta["settings"]["negatives"] == 3
    # the blend weight is chosen on the held-out training queries and read back with the model
    assert meta["scores"]["dev_queries_blend"] == 3
    assert len(meta["scores"]["dev_ndcg@10_by_blend"]) == len(BLEND_GRID)
    assert meta["scores"]["blend"] in BLEND_GRID
    assert CrossEncoderReranker(str(out)).blend == meta["scores"]["blend"]
    assert CrossEncoderReranker(str(out), blend=0.3).blend == 0.3
    # the languages of its training queries: queries in other languages keep the fused order
    from retriever.evaluation import load_beir
    from retriever.text import detect_language

    trained_on = {detect_language(q) for q in load_beir(FIXTURE, "train").queries.values()}
    assert meta["data"]["query_languages"] == sorted(trained_on)
    assert CrossEncoderReranker(str(out)).languages == frozenset(trained_on)
    scores = CrossEncoder(str(out), device="cpu").predict([("coffee and diabetes", "Coffee lowers diabetes risk."),
                                                           ("coffee and diabetes", "Malaria and mosquitoes.")])
    assert np.asarray(scores).shape == (2,) and np.all(np.isfinite(scores))


def test_train_embedder_writes_a_sentence_transformer(tmp_path: Path, common: list[str]) -> None:
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "embedder"
    assert main(["train", "embedder", "--out", str(out), *common]) == 0
    meta = json.loads((out / "ragd_training.json").read_text())
    assert meta["kind"] == "embedder" and meta["scores"]["first_loss"] > 0
    vectors = SentenceTransformer(str(out), device="cpu").encode(["gut bacteria", "장내 세균"])
    assert vectors.shape == (2, 384)
