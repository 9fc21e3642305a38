"""Ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from lab.retriever.metrics import mean_metrics, mrr_at_k, ndcg_at_k, percentile, recall_at_k

QRELS = {"a": 1, "c": 2, "d": 1}


def test_ndcg_graded_by_hand() -> None:
    # DCG = 1/log2(2) + 0 + 2/log2(4) = 2; IDCG over [2, 1, 1] = 2 + 1/log2(3) + 1/2
    expected = 2.0 / (2.0 + 1.0 / math.log2(3) + 0.5)
    assert ndcg_at_k(["a", "b", "c"], QRELS, 10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b", "c"], QRELS, 10) == pytest.approx(0.638787, abs=1e-6)


def test_ndcg_cutoff_and_perfect_order() -> None:
    # top 2 of [b, a, c]: DCG = 1/log2(3); IDCG@2 = 2 + 1/log2(3)
    assert ndcg_at_k(["b", "a", "c"], QRELS, 2) == pytest.approx((1 / math.log2(3)) / (2 + 1 / math.log2(3)))
    assert ndcg_at_k(["c", "a", "d"], QRELS, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], QRELS, 10) == 0.0
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0


def test_recall_and_mrr() -> None:
    assert recall_at_k(["a", "b", "c"], QRELS, 100) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "b", "c"], QRELS, 1) == pytest.approx(1 / 3)
    assert mrr_at_k(["b", "x", "c"], QRELS, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["b", "x", "c"], QRELS, 2) == 0.0


def test_mean_counts_unanswered_judged_queries_as_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"z": 0}}
    means = mean_metrics({"q1": ["a"], "q3": ["z"]}, qrels)
    assert means == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([], 95) == 0.0
