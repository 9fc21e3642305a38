"""Fusion of ranked lists: reciprocal rank fusion and weighted fusion of normalised scores.

Pure functions. A ranked list is a sequence of (id, score), best first.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Literal

__all__ = ["Ranked", "normalise", "reciprocal_rank_fusion", "weighted_fusion"]

Ranked = Sequence[tuple[str, float]]


def reciprocal_rank_fusion(rankings: Mapping[str, Ranked], *, k: int = 60) -> list[tuple[str, float]]:
    """score(id) = sum over lists of 1 / (k + rank), rank 1-based; ties broken by id for determinism."""
    scores: dict[str, float] = {}
    for ranked in rankings.values():
        for rank, (item, _) in enumerate(ranked, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def normalise(ranked: Ranked, method: Literal["minmax", "zscore"] = "minmax") -> dict[str, float]:
    """Scores of one list mapped to a common scale (min-max to [0, 1], or z-scores)."""
    if not ranked:
        return {}
    values = [score for _, score in ranked]
    if method == "zscore":
        mean = statistics.fmean(values)
        spread = statistics.pstdev(values)
        return {item: (score - mean) / spread if spread else 0.0 for item, score in ranked}
    low, high = min(values), max(values)
    return {item: (score - low) / (high - low) if high > low else 1.0 for item, score in ranked}


def weighted_fusion(
    rankings: Mapping[str, Ranked],
    weights: Mapping[str, float],
    *,
    method: Literal["minmax", "zscore"] = "minmax",
) -> list[tuple[str, float]]:
    """sum of weight * normalised score; an id missing from a list gets that list's lowest normalised score."""
    scores: dict[str, float] = {}
    normalised = {side: normalise(ranked, method) for side, ranked in rankings.items()}
    every = {item for side in normalised.values() for item in side}
    for side, side_scores in normalised.items():
        weight = weights.get(side, 0.0)
        floor = min(side_scores.values(), default=0.0)
        for item in every:
            scores[item] = scores.get(item, 0.0) + weight * side_scores.get(item, floor)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
