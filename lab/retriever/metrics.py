"""Ranking metrics with graded relevance, computed the way trec_eval / BEIR do.

``qrels`` maps a document id to its graded relevance (``> 0`` is relevant); ``ranking`` is the
list of retrieved document ids, best first, without duplicates. nDCG uses linear gain
(``rel / log2(rank + 1)``), as trec_eval's ``ndcg_cut`` and BEIR's published numbers do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["mean_metrics", "mrr_at_k", "ndcg_at_k", "percentile", "recall_at_k"]


def ndcg_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """Normalised discounted cumulative gain of the top ``k``; 0 when nothing is relevant."""
    ideal = sorted((rel for rel in qrels.values() if rel > 0), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    if idcg == 0:
        return 0.0
    dcg = sum(max(qrels.get(doc, 0), 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    return dcg / idcg


def recall_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant documents found in the top ``k``; 0 when nothing is relevant."""
    relevant = {doc for doc, rel in qrels.items() if rel > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document in the top ``k`` (0 if none)."""
    for i, doc in enumerate(ranking[:k]):
        if qrels.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def mean_metrics(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over every query that has judgements.

    A judged query missing from ``rankings`` counts as retrieving nothing (scores 0).
    """
    judged = [q for q, rels in qrels.items() if any(r > 0 for r in rels.values())]
    if not judged:
        return {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    rows = [
        (
            ndcg_at_k(rankings.get(q, ()), qrels[q], 10),
            recall_at_k(rankings.get(q, ()), qrels[q], 100),
            mrr_at_k(rankings.get(q, ()), qrels[q], 10),
        )
        for q in judged
    ]
    means = np.asarray(rows, dtype=np.float64).mean(axis=0)
    return {"ndcg@10": float(means[0]), "recall@100": float(means[1]), "mrr@10": float(means[2])}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))
