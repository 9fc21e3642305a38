"""``ragd eval retrieval`` / ``ragd eval hnsw`` on the tiny BEIR fixture, and the dataset loaders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.retriever.evaluation import load_beir, load_dataset, load_korquad
from services.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "beir_tiny"
MINILM = ["--set", "embedder_backend=sentence-transformers", "--no-progress"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eval-cache")


def test_beir_loader_reads_split_and_ignores_metadata() -> None:
    test = load_beir(FIXTURE, "test")
    train = load_beir(FIXTURE, "train")
    assert len(test.docs) == 12 and set(test.queries) == {"q1", "q2", "q3", "q4", "q5", "q6"}
    assert test.qrels["q2"] == {"d2": 2}
    assert not set(test.queries) & set(train.queries)
    assert all("gold" not in text and "d1" not in text for text in test.queries.values())


def test_korquad_loader_dedupes_contexts(tmp_path: Path) -> None:
    para = {"context": "서울은 대한민국의 수도이다.", "qas": [{"id": "a1", "question": "대한민국의 수도는?",
                                                        "answers": [{"text": "서울", "answer_start": 0}]}]}
    twin = {"context": para["context"], "qas": [{"id": "a2", "question": "수도는 어디?", "answers": []}]}
    other = {"context": "부산은 항구 도시이다.", "qas": [{"id": "b1", "question": "항구 도시는?", "answers": []}]}
    path = tmp_path / "kq.json"
    data = {"data": [{"title": "서울", "paragraphs": [para, twin]}, {"title": "부산", "paragraphs": [other]}]}
    path.write_text(json.dumps(data, ensure_ascii=False))
    dataset = load_dataset(path)
    assert dataset.name == load_korquad(path).name == "kq"
    assert len(dataset.docs) == 2 and len(dataset.queries) == 3
    assert dataset.qrels["a1"] == dataset.qrels["a2"] != dataset.qrels["b1"]
    assert {d.title for d in dataset.docs} == {"서울", "부산"}


def test_eval_retrieval_reports_metrics_and_reuses_index(tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "report.json"
    args = ["eval", "retrieval", "--dataset", str(FIXTURE), "--cache-dir", str(cache_dir), *MINILM]
    assert main([*args, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    for key in ("ndcg@10", "recall@100", "mrr@10", "latency_ms_p50", "latency_ms_p95"):
        assert key in report
    assert report["queries"] == 6 and report["documents"] == 12
    assert report["ndcg@10"] >= 0.8 and report["recall@100"] == 1.0
    assert report["settings"]["embedder_backend"] == "sentence-transformers"
    indexes = sorted(p.name for p in cache_dir.iterdir())
    # a search-only setting reuses the index; a chunking setting builds another
    assert main([*args, "--set", "fusion=weighted", "--limit", "2", "--json", str(out)]) == 0
    assert sorted(p.name for p in cache_dir.iterdir()) == indexes
    assert json.loads(out.read_text())["queries"] == 2
    assert main([*args, "--set", "chunk_size=60", "--set", "chunk_overlap=10", "--limit", "1"]) == 0
    assert len(list(cache_dir.iterdir())) == len(indexes) + 1


def test_eval_hnsw_measures_recall_and_plots(tmp_path: Path, cache_dir: Path) -> None:
    out, plot = tmp_path / "hnsw.json", tmp_path / "hnsw.png"
    args = ["eval", "hnsw", "--dataset", str(FIXTURE), "--cache-dir", str(cache_dir), "--ef", "4,16",
            "--json", str(out), "--plot", str(plot), *MINILM]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert [p["ef_search"] for p in report["points"]] == [4, 16]
    assert all(0.0 <= p["recall@10"] <= 1.0 for p in report["points"])
    assert report["points"][-1]["recall@10"] == 1.0  # 12 vectors: a wide beam finds the exact top 10
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_retrieval_plot_draws_saved_reports_of_the_same_dataset(tmp_path: Path, cache_dir: Path) -> None:
    args = ["eval", "retrieval", "--dataset", str(FIXTURE), "--cache-dir", str(cache_dir), *MINILM]
    saved = tmp_path / "saved.json"
    assert main([*args, "--set", "fusion=rrf", "--json", str(saved)]) == 0
    plot = tmp_path / "plot.png"
    assert main([*args, "--plot", str(plot), "--plot-with", str(saved)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = json.loads(saved.read_text()) | {"dataset": "scifact:test"}
    saved.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="not of beir_tiny"):
        main([*args, "--plot", str(tmp_path / "no.png"), "--plot-with", str(saved)])
