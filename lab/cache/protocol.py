"""Leave-kind-out choice of the semantic threshold and the guards, with the evidence check on.

The choices (a cosine threshold and which guards to switch off) are made by one rule, :func:`choose`:
the most paraphrase hits whose near-miss false hits stay within the bounds (pairwise none, crowded
<= 1 %). Each pair is decided as the gateway would decide it: threshold, guards and, for pairs about
a corpus, the evidence check; a pair about no corpus has no retrieval to check, so it is decided by
threshold and guards alone (what the cache does for it is then at least as strict).

Leave-kind-out: for each near-miss kind, :func:`choose` runs on every pair but that kind's near misses
and the held-out kind is scored at its choice, the false hits of a kind the choice never saw. The
shipped choice is the one on all kinds, made no looser than any fold: the highest threshold any fold
chose, and only the guards every fold switched off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from cache.evaluation import Agrees, Pair, Rule, Vectors, crowded, pairwise
from cache.guards import GUARDS

__all__ = ["Choice", "choose", "leave_kind_out"]

THRESHOLDS = tuple(round(0.85 + 0.005 * i, 3) for i in range(25))
MAX_PAIRWISE = 0.0
MAX_CROWDED = 0.01


@dataclass(frozen=True)
class Choice:
    threshold: float
    guards_off: frozenset[str]
    hit_rate: float

    def rule(self, agrees: Agrees | None) -> Rule:
        return Rule(self.threshold, guards_off=self.guards_off, agrees=agrees)


def _decide(pairs: Sequence[Pair], vectors: Vectors, rule: Rule, view: str) -> dict[str, Any]:
    """Rates with pairs about a corpus evidence-checked and the others by threshold and guards."""
    grounded = [p for p in pairs if p.corpus]
    free = [p for p in pairs if not p.corpus]
    plain = Rule(rule.threshold, rule.guards, rule.guards_off)
    measure = pairwise if view == "pairwise" else crowded
    parts = [measure(rows, vectors, r) for rows, r in ((grounded, rule), (free, plain)) if rows]
    positives = sum(p.hit for p in pairs)
    negatives = len(pairs) if view == "crowded" else len(pairs) - positives
    good = sum(part["hits"] for part in parts)
    wrong = [fid for part in parts for fid in part["false_hits"]]
    return {"hit_rate": round(good / max(positives, 1), 4), "false_hit_rate": round(len(wrong) / max(negatives, 1), 4),
            "false_hits": wrong}


def _safe(pairs: Sequence[Pair], vectors: Vectors, agrees: Agrees | None, threshold: float,
          guards_off: frozenset[str]) -> tuple[bool, float]:
    rule = Rule(threshold, guards_off=guards_off, agrees=agrees)
    pair_rates = _decide(pairs, vectors, rule, "pairwise")
    if pair_rates["false_hit_rate"] > MAX_PAIRWISE:
        return False, pair_rates["hit_rate"]
    return _decide(pairs, vectors, rule, "crowded")["false_hit_rate"] <= MAX_CROWDED, pair_rates["hit_rate"]


def _lowest_safe(pairs: Sequence[Pair], vectors: Vectors, agrees: Agrees | None,
                 guards_off: frozenset[str]) -> Choice:
    """The lowest threshold that is safe there and at every higher threshold (scanned from the top)."""
    best = Choice(THRESHOLDS[-1], guards_off, 0.0)
    for t in reversed(THRESHOLDS):
        ok, hits = _safe(pairs, vectors, agrees, t, guards_off)
        if not ok:
            break
        best = Choice(t, guards_off, hits)
    return best


def choose(pairs: Sequence[Pair], vectors: Vectors, agrees: Agrees | None, candidates: Sequence[str] = ()) -> Choice:
    """Greedy: the best threshold with every guard on, then switch off one guard at a time while that
    gains paraphrase hits at a safe threshold."""
    best = _lowest_safe(pairs, vectors, agrees, frozenset())
    remaining = list(candidates or GUARDS)
    while remaining:
        tries = [_lowest_safe(pairs, vectors, agrees, best.guards_off | {g}) for g in remaining]
        top = max(tries, key=lambda c: (c.hit_rate, c.threshold))
        if top.hit_rate <= best.hit_rate:
            break
        best = top
        remaining = [g for g in remaining if g not in top.guards_off]
    return best


def leave_kind_out(pairs: Sequence[Pair], vectors: Vectors, agrees: Agrees | None) -> dict[str, Any]:
    """Folds (one per near-miss kind), the choice on all kinds and the shipped, no-looser choice."""
    kinds = sorted({p.kind for p in pairs if not p.hit})
    folds: dict[str, Any] = {}
    for kind in tqdm(kinds, desc="leave-kind-out folds", unit="kind"):
        train = [p for p in pairs if p.hit or p.kind != kind]
        held = [p for p in pairs if not p.hit and p.kind == kind]
        made = choose(train, vectors, agrees)
        scored = _decide(held, vectors, made.rule(agrees), "pairwise")
        folds[kind] = {"threshold": made.threshold, "guards_off": sorted(made.guards_off),
                       "train_hit_rate": made.hit_rate, "held_out_near_misses": len(held),
                       "held_out_false_hit_rate": scored["false_hit_rate"],
                       "held_out_false_hits": scored["false_hits"]}
    full = choose(pairs, vectors, agrees)
    shipped_threshold = max([full.threshold, *(f["threshold"] for f in folds.values())])
    shipped_off = frozenset.intersection(full.guards_off, *(frozenset(f["guards_off"]) for f in folds.values()))
    return {"folds": folds,
            "all_kinds": {"threshold": full.threshold, "guards_off": sorted(full.guards_off),
                          "hit_rate": full.hit_rate},
            "shipped": {"threshold": shipped_threshold, "guards_off": sorted(shipped_off)}}
