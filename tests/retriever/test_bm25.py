"""BM25 index: ranking, persistence bound to the corpus fingerprint, empty corpora."""

from __future__ import annotations

from pathlib import Path

from retriever.bm25 import BM25Index
from retriever.text import analyze

DOCS = {
    "tides": "Tides are caused by the gravitational pull of the Moon.",
    "bees": "Honeybees dance to show where flowers are.",
    "moon": "The Moon orbits the Earth every 27 days.",
    "jeju": "한라산은 제주도 중앙에 있는 화산이다.",
}


def _index(fingerprint: str = "f1") -> BM25Index:
    return BM25Index(list(DOCS), [analyze(t) for t in DOCS.values()], fingerprint=fingerprint)


def test_ranking_prefers_documents_with_the_query_terms() -> None:
    index = _index()
    ranked = index.search(analyze("what does the Moon pull"), 10)
    assert [doc for doc, _ in ranked][:2] == ["tides", "moon"]
    assert all(score > 0 for _, score in ranked) and ranked == sorted(ranked, key=lambda p: -p[1])
    assert [doc for doc, _ in index.search(analyze("한라산 높이"), 3)] == ["jeju"]
    assert index.search(analyze("completely unrelated words"), 3) == []
    assert len(index.search(analyze("moon"), 1)) == 1


def test_saved_index_is_used_only_for_the_same_fingerprint(tmp_path: Path) -> None:
    _index("f1").save(tmp_path / "idx")
    loaded = BM25Index.load(tmp_path / "idx", "f1")
    assert loaded is not None
    assert loaded.search(analyze("honeybees"), 2) == _index().search(analyze("honeybees"), 2)
    assert BM25Index.load(tmp_path / "idx", "f2") is None
    assert BM25Index.load(tmp_path / "absent", "f1") is None
    _index("f2").save(tmp_path / "idx")  # replaced atomically
    assert BM25Index.load(tmp_path / "idx", "f2") is not None and BM25Index.load(tmp_path / "idx", "f1") is None


def test_empty_index(tmp_path: Path) -> None:
    empty = BM25Index([], [], fingerprint="e")
    assert empty.search(["moon"], 5) == [] and len(empty) == 0
    empty.save(tmp_path / "e")
    reloaded = BM25Index.load(tmp_path / "e", "e")
    assert reloaded is not None and reloaded.search(["moon"], 5) == []
