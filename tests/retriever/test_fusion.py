"""Reciprocal rank fusion and weighted fusion on hand-made ranked lists."""

from __future__ import annotations

import pytest

from retriever.fusion import normalise, reciprocal_rank_fusion, weighted_fusion

BM25 = [("a", 12.0), ("b", 9.0), ("c", 1.0)]
DENSE = [("c", 0.91), ("a", 0.90), ("d", 0.50)]


def test_rrf_scores_and_order() -> None:
    fused = dict(reciprocal_rank_fusion({"bm25": BM25, "dense": DENSE}, k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    order = [item for item, _ in reciprocal_rank_fusion({"bm25": BM25, "dense": DENSE}, k=60)]
    assert order == ["a", "c", "b", "d"]


def test_rrf_small_k_rewards_a_single_top_rank_large_k_rewards_agreement() -> None:
    # p: rank 1 on one side only; m: rank 5 on both. p wins iff 1/(k+1) > 2/(k+5), i.e. k < 3.
    lists = {"x": [(i, 1.0) for i in ("p", "a", "b", "c", "m")], "y": [(i, 1.0) for i in ("d", "e", "f", "g", "m")]}
    small = [i for i, _ in reciprocal_rank_fusion(lists, k=1)]
    large = [i for i, _ in reciprocal_rank_fusion(lists, k=60)]
    assert small.index("p") < small.index("m")
    assert large.index("m") < large.index("p")


def test_rrf_with_one_side_keeps_its_order() -> None:
    assert [i for i, _ in reciprocal_rank_fusion({"bm25": BM25})] == ["a", "b", "c"]
    assert reciprocal_rank_fusion({}) == []


def test_minmax_and_zscore_normalisation() -> None:
    assert normalise(BM25) == {"a": 1.0, "b": pytest.approx(8 / 11), "c": 0.0}
    z = normalise([("a", 1.0), ("b", 3.0)], "zscore")
    assert z == {"a": -1.0, "b": 1.0}
    assert normalise([("only", 5.0)]) == {"only": 1.0}


def test_weighted_fusion_follows_the_weights() -> None:
    lists = {"bm25": BM25, "dense": DENSE}
    # min-max: bm25 a=1, b=8/11, c=0; dense c=1, a=0.40/0.41, d=0; a missing item gets its side's floor 0.
    assert [i for i, _ in weighted_fusion(lists, {"bm25": 1.0, "dense": 0.0})] == ["a", "b", "c", "d"]
    assert [i for i, _ in weighted_fusion(lists, {"bm25": 0.0, "dense": 1.0})] == ["c", "a", "b", "d"]
    assert [i for i, _ in weighted_fusion(lists, {"bm25": 0.5, "dense": 0.5})] == ["a", "c", "b", "d"]
    assert [i for i, _ in weighted_fusion(lists, {"bm25": 0.2, "dense": 0.8})] == ["a", "c", "b", "d"]
    assert [i for i, _ in weighted_fusion(lists, {"bm25": 0.0, "dense": 1.0}, method="zscore")][:2] == ["c", "a"]


def test_weighted_fusion_missing_item_gets_side_floor() -> None:
    fused = dict(weighted_fusion({"bm25": BM25, "dense": DENSE}, {"bm25": 0.5, "dense": 0.5}))
    assert fused["d"] == pytest.approx(0.5 * 0.0 + 0.5 * 0.0)
    assert fused["a"] == pytest.approx(0.5 * 1.0 + 0.5 * (0.40 / 0.41))
