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

    from embeddings.cross_onnx import graph_path
    from lab.retriever.training import BLEND_GRID
    from retriever.rerank import CrossEncoderReranker

    out = tmp_path / "reranker"
    # two groups of (positive + 3 negatives) per batch: the listwise loss draws no in-batch negatives
    assert main(["train", "reranker", "--out", str(out), "--negatives", "3", "--dev-fraction", "0.5",
                 *common, "--batch-size", "8"]) == 0
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
    from lab.retriever.evaluation import load_beir
    from retriever.text import detect_language

    trained_on = {detect_language(q) for q in load_beir(FIXTURE, "train").queries.values()}
    assert meta["data"]["query_languages"] == sorted(trained_on)
    assert CrossEncoderReranker(str(out)).languages == frozenset(trained_on)
    scores = CrossEncoder(str(out), device="cpu").predict([("coffee and diabetes", "Coffee lowers diabetes risk."),
                                                           ("coffee and diabetes", "Malaria and mosquitoes.")])
    assert np.asarray(scores).shape == (2,) and np.all(np.isfinite(scores))
    # training writes the ONNX Runtime graphs the retriever serves, with sentence-transformers' scores
    assert graph_path(out, "fp32").is_file() and graph_path(out, "int8").is_file()
    assert graph_path(out, "fp32").parent == out / "onnx"
    served = CrossEncoderReranker(str(out), precision="fp32").scores(
        "coffee and diabetes", ["Coffee lowers diabetes risk.", "Malaria and mosquitoes."])
    assert np.allclose(served, scores, atol=1e-5)


def test_train_embedder_writes_a_sentence_transformer(tmp_path: Path, common: list[str]) -> None:
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "embedder"
    assert main(["train", "embedder", "--out", str(out), *common]) == 0
    meta = json.loads((out / "ragd_training.json").read_text())
    assert meta["kind"] == "embedder" and meta["scores"]["first_loss"] > 0
    vectors = SentenceTransformer(str(out), device="cpu").encode(["gut bacteria", "장내 세균"])
    assert vectors.shape == (2, 384)


def test_train_query_side_adapts_queries_without_reembedding(tmp_path: Path, common: list[str]) -> None:
    import asyncio

    from lab.retriever.evaluation import evaluate, load_beir
    from retriever.embedders import QuerySideEmbedder, build_embedder
    from retriever.settings import RetrieverSettings

    out = tmp_path / "query-side"
    args = [a for a in common if a != "--max-steps" and a != "2"]
    assert main(["train", "embedder", "--query-side", "--out", str(out), "--epochs", "3", "--lr", "1e-4",
                 "--dev-fraction", "0.34", *args]) == 0
    meta = json.loads((out / "ragd_training.json").read_text())
    assert meta["kind"] == "query_side" and meta["scores"]["steps"] == 3 and meta["scores"]["dev_queries"] == 2
    assert meta["scores"]["index_rows"] >= 12 and 0.0 <= meta["scores"]["dev_dense_ndcg@10_after"] <= 1.0
    # the fine-tune moved the query encoder: its vectors differ from the base model's
    settings = RetrieverSettings(embedder_backend="sentence-transformers", query_embedder_model=str(out))
    adapted = build_embedder(settings)
    base = build_embedder(RetrieverSettings(embedder_backend="sentence-transformers"))
    assert isinstance(adapted, QuerySideEmbedder) and adapted.name == base.name
    question = ["Does coffee lower the risk of diabetes?"]
    assert float(adapted.embed_queries(question)[0] @ base.embed_queries(question)[0]) < 0.99999
    assert np.allclose(adapted.embed_passages(["Coffee and diabetes."]), base.embed_passages(["Coffee and diabetes."]))
    # the evaluation serves it over the cached index (no new ingest) and scores as usual
    cache = Path(common[common.index("--cache-dir") + 1])
    indexes = sorted(p.name for p in cache.iterdir())
    report = asyncio.run(evaluate(load_beir(FIXTURE, "test"), settings, cache_root=cache, progress=False))
    assert sorted(p.name for p in cache.iterdir()) == indexes
    assert report["queries"] == 6 and 0.0 < report["ndcg@10"] <= 1.0
    # a query in a language the model was not trained on keeps the base's query side
    meta["data"]["query_languages"] = ["en"]
    (out / "ragd_training.json").write_text(json.dumps(meta))
    english_only = build_embedder(settings)
    korean = ["조선의 수도는 어디였나?"]
    assert np.allclose(english_only.embed_queries(korean), base.embed_queries(korean), atol=1e-6)
    mixed = english_only.embed_queries([question[0], korean[0]])
    assert np.allclose(mixed, np.vstack([adapted.embed_queries(question), base.embed_queries(korean)]), atol=1e-5)
    # a query side trained against other passages is refused at start
    with pytest.raises(ValueError, match="trained against the passages of"):
        build_embedder(RetrieverSettings(query_embedder_model=str(out)))
