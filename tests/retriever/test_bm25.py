"""BM25 index: ranking, persistence bound to the corpus fingerprint, empty corpora, incremental segments."""

from __future__ import annotations

import random
from pathlib import Path

import bm25s
import numpy as np

from retriever.bm25 import BM25Index
from retriever.text import analyze, content_terms

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


# ---------------------------------------------------------------- segments and incremental changes

def _corpus(n: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """``n`` chunks of Zipf-distributed words (some empty), like real term statistics."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(400)]
    weights = [1 / (i + 1) for i in range(400)]
    return [f"c{seed}-{i}" for i in range(n)], [rng.choices(words, weights, k=rng.randint(0, 60)) for _ in range(n)]


def _queries(count: int = 40) -> list[list[str]]:
    rng = random.Random(99)
    words = [f"w{i}" for i in range(420)]  # a few words no chunk has
    return [rng.choices(words, k=rng.randint(1, 6)) for _ in range(count)] + [["w1", "w1", "w7"]]


def _ranked(index: BM25Index, query: list[str], k: int = 1000) -> dict[str, float]:
    return dict(index.search(query, k))


def test_scores_are_those_of_bm25s_lucene() -> None:
    ids, terms = _corpus(300, 1)
    index = BM25Index(ids, terms, k1=1.2, b=0.5)
    reference = bm25s.BM25(k1=1.2, b=0.5)
    reference.index([t or [""] for t in terms], show_progress=False)
    for query in _queries():
        known = [t for t in query if t in reference.vocab_dict]
        expected = np.asarray(reference.get_scores(known), dtype=np.float32) if known else np.zeros(len(ids))
        assert _ranked(index, query) == {c: float(s) for c, s in zip(ids, expected, strict=True) if s > 0}


def test_an_update_adds_a_delta_segment_leaves_the_base_untouched_and_scores_as_a_rebuild() -> None:
    ids, terms = _corpus(400, 2)
    base = BM25Index(ids[:300], terms[:300], k1=1.2, b=0.5, fingerprint="v1")
    base_segment = base.segments[0]
    postings = (base_segment.rows.copy(), base_segment.tfs.copy(), base_segment.lengths.copy())
    before = {tuple(q): _ranked(base, q) for q in _queries()}
    removed = ids[10:20]
    changed = [ids[30]]  # re-added with other terms: its old row is dropped
    step1 = base.updated(removed, [*changed, *ids[300:350]], [terms[31], *terms[300:350]], fingerprint="v2")
    step2 = step1.updated([ids[305]], ids[350:], terms[350:], fingerprint="v3")

    assert step2.segments[0] is base_segment and len(step2.segments) == 3
    assert all(np.array_equal(a, b) for a, b in zip(postings, (base_segment.rows, base_segment.tfs,
                                                                  base_segment.lengths), strict=True))
    assert {tuple(q): _ranked(base, q) for q in _queries()} == before  # the old index still serves its corpus
    final = {cid: t for cid, t in zip(ids, terms, strict=True) if cid not in {*removed, ids[305]}}
    final[ids[30]] = terms[31]
    rebuilt = BM25Index(list(final), list(final.values()), k1=1.2, b=0.5)
    assert len(step2) == len(rebuilt) == len(final)
    for query in _queries():
        assert _ranked(step2, query) == _ranked(rebuilt, query)
        assert [s for _, s in step2.search(query, 10)] == [s for _, s in rebuilt.search(query, 10)]


def test_merge_folds_the_segments_into_one_with_the_same_scores() -> None:
    ids, terms = _corpus(200, 3)
    index = BM25Index(ids[:100], terms[:100], k1=1.5, b=0.75).updated(ids[:30], ids[100:], terms[100:],
                                                                       fingerprint="m")
    assert index.needs_merge()
    before = {tuple(q): index.search(q, 50) for q in _queries()}
    index.merge()
    assert len(index.segments) == 1 and not index.needs_merge() and len(index) == 170
    assert {tuple(q): index.search(q, 50) for q in _queries()} == before


def test_filters_and_deletions_together() -> None:
    ids, terms = _corpus(120, 4)
    index = BM25Index(ids[:60], terms[:60]).updated(ids[:5], ids[60:], terms[60:], fingerprint="f")
    allowed = set(ids[:10]) | set(ids[70:75])
    for query in _queries():
        hits = index.search(query, 20, allowed=allowed)
        assert {c for c, _ in hits} <= allowed - set(ids[:5])


def test_saving_an_update_writes_only_the_delta_and_loads_back(tmp_path: Path) -> None:
    ids, terms = _corpus(150, 5)
    base = BM25Index(ids[:100], terms[:100], fingerprint="v1")
    base.save(tmp_path / "idx")
    base_folder = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "idx").iterdir() if p.is_dir()}
    updated = base.updated(ids[:3], ids[100:], terms[100:], fingerprint="v2")
    updated.save(tmp_path / "idx")
    folders = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "idx").iterdir() if p.is_dir()}
    assert len(folders) == 2 and all(folders[name] == mtime for name, mtime in base_folder.items())
    assert BM25Index.load(tmp_path / "idx", "v1") is None
    loaded = BM25Index.load(tmp_path / "idx", "v2")
    assert loaded is not None and len(loaded) == 147
    for query in _queries():
        assert loaded.search(query, 30) == updated.search(query, 30)
    updated.merge()
    updated.save(tmp_path / "idx")  # the merged segment replaces both folders
    assert len([p for p in (tmp_path / "idx").iterdir() if p.is_dir()]) == 1
    again = BM25Index.load(tmp_path / "idx", "v2")
    assert again is not None and again.search(["w1", "w3"], 30) == loaded.search(["w1", "w3"], 30)


def test_coverage_weighs_the_rare_terms_of_the_question_by_their_idf_over_the_index() -> None:
    docs = {"a": "The Moon orbits the Earth.", "b": "The Moon pulls the tides of the Earth.",
            "c": "The Moon was first reached by Apollo 11 in 1969.", "d": "Bees dance."}
    index = BM25Index(list(docs), [analyze(t) for t in docs.values()])
    cover = index.coverage(analyze("When did Apollo 11 reach the Moon?"), ["a", "c", "d", "unknown"])
    # "a" holds only the common "moon"; "c" holds every term; a chunk that is not indexed holds nothing
    assert cover["c"] == 1.0 and cover["d"] == cover["unknown"] == 0.0
    assert 0.0 < cover["a"] < 0.34
    # a question term no chunk holds weighs most: a passage sharing the rest covers less than its share of terms
    missing = index.coverage(analyze("Apollo Moon Tranquility"), ["c"])["c"]
    assert 0.0 < missing < 2 / 3
    assert index.coverage([], ["a"]) == {"a": 0.0}


def test_coverage_reads_a_replaced_chunk_as_its_live_version() -> None:
    base = BM25Index(["x", "y"], [analyze("old words here"), analyze("other text")])
    step = base.updated(["x"], ["x"], [analyze("new lighthouse words")], fingerprint="v2")
    assert step.coverage(analyze("lighthouse"), ["x"])["x"] == 1.0
    assert step.coverage(analyze("old"), ["x"])["x"] == 0.0


def test_content_terms_leave_out_korean_question_words() -> None:
    assert "누구" not in content_terms(analyze("한라산을 처음 오른 사람은 누구인가?"))
    assert "한라산" in content_terms(analyze("한라산을 처음 오른 사람은 누구인가?"))
    assert content_terms(analyze("Who climbed the mountain?")) == analyze("Who climbed the mountain?")
