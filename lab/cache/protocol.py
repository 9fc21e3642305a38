"""Leave-kind-out choice of the semantic threshold and the guards, with the evidence check on.

The choices (a cosine threshold, which guards to switch off and how strict the evidence check is:
the rank within which the cached answer's chunk must come back) are made by one rule, :func:`choose`:
the most paraphrase hits whose near-miss false hits stay within the bounds (<= 1 % pairwise and
crowded, as the threshold rule before it; a bound of none is never met on a dev set that holds one
pair no lexical check tells apart). Each pair is decided as the gateway would decide it: threshold,
guards and, for pairs about a corpus, the evidence check; a pair about no corpus has no retrieval to
check, so it is decided by threshold and guards alone (what the cache does for it is then at least as
strict).

Leave-kind-out: for each near-miss kind, :func:`choose` runs on every pair but that kind's near misses
and the held-out kind is scored at its choice, the false hits of a kind the choice never saw. A fold
that never sees a kind switches off the guard made for it, and its held-out false hits show what that
costs; so only the guards that every fold (and the choice on all kinds) switched off are switched off.
With that guard set fixed, each fold chooses its threshold and evidence rank again and is scored again
on its held-out kind; the shipped threshold is the highest of those and of the choice on all kinds,
and the shipped rank the strictest.

Per language: a Korean paraphrase sits further from its question in e5's space than an English one
does, so one threshold for both gives up Korean hits to keep English near misses out, and one bound
over both lets one language's false hits hide among the other's near misses. With the guard set and
the rank fixed, the same folds run again on each language's pairs alone, under the same bounds; the
language's threshold is the highest of its folds' and of its choice on all kinds, and the cache
compares a question with its own language's threshold (``RAGD_CACHE_SEMANTIC_THRESHOLDS``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tqdm import tqdm

from cache.guards import GUARDS, fired_guards
from lab.cache.evaluation import Agrees, Pair, Rule, Vectors, crowded, pairwise

__all__ = ["Checks", "Choice", "choose", "leave_kind_out"]

THRESHOLDS = tuple(round(0.85 + 0.005 * i, 3) for i in range(25))
MAX_PAIRWISE = 0.01
MAX_CROWDED = 0.01


Checks = Mapping[int, Agrees]
"""The evidence check at each cited rank considered (1: the cached answer's chunk must come back first;
0: anywhere in the top-k)."""


@dataclass(frozen=True)
class Choice:
    threshold: float
    guards_off: frozenset[str]
    hit_rate: float
    cited_rank: int = 0

    def rule(self, checks: Checks | None) -> Rule:
        return Rule(self.threshold, guards_off=self.guards_off, agrees=checks[self.cited_rank] if checks else None)


def _strictness(rank: int) -> int:
    return rank or 1_000_000


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


def _guard_candidates(pairs: Sequence[Pair], vectors: Vectors) -> list[str]:
    """Guards that refuse at least two paraphrases within reach of the thresholds: only switching off
    one of these can gain hits."""
    costs: dict[str, int] = {}
    for p in pairs:
        if p.hit and float(vectors[p.a] @ vectors[p.b]) >= THRESHOLDS[0]:
            for name in fired_guards(p.b, p.a):
                costs[name] = costs.get(name, 0) + 1
    return [name for name in GUARDS if costs.get(name, 0) >= 2]


def _choose_at(pairs: Sequence[Pair], vectors: Vectors, agrees: Agrees | None, rank: int) -> Choice:
    """Greedy: the best threshold with every guard on, then switch off one guard at a time while that
    gains paraphrase hits at a safe threshold."""
    best = _lowest_safe(pairs, vectors, agrees, frozenset())
    remaining = _guard_candidates(pairs, vectors)
    while remaining:
        tries = [_lowest_safe(pairs, vectors, agrees, best.guards_off | {g}) for g in remaining]
        top = max(tries, key=lambda c: (c.hit_rate, c.threshold))
        if top.hit_rate <= best.hit_rate:
            break
        best = top
        remaining = [g for g in remaining if g not in top.guards_off]
    return Choice(best.threshold, best.guards_off, best.hit_rate, rank)


def choose(pairs: Sequence[Pair], vectors: Vectors, checks: Checks | None) -> Choice:
    """The best choice over the evidence ranks considered (the stricter rank on a tie)."""
    options: list[Choice] = (
        [_choose_at(pairs, vectors, agrees, rank) for rank, agrees in checks.items()]
        if checks else [_choose_at(pairs, vectors, None, 0)]
    )
    return max(options, key=lambda c: (c.hit_rate, c.threshold, -_strictness(c.cited_rank)))


def leave_kind_out(pairs: Sequence[Pair], vectors: Vectors, checks: Checks | None) -> dict[str, Any]:
    """Folds (one per near-miss kind), the choice on all kinds and the shipped, no-looser choice."""
    kinds = sorted({p.kind for p in pairs if not p.hit})
    folds: dict[str, Any] = {}
    for kind in tqdm(kinds, desc="leave-kind-out folds", unit="kind"):
        train = [p for p in pairs if p.hit or p.kind != kind]
        held = [p for p in pairs if not p.hit and p.kind == kind]
        made = choose(train, vectors, checks)
        scored = _decide(held, vectors, made.rule(checks), "pairwise")
        folds[kind] = {"threshold": made.threshold, "guards_off": sorted(made.guards_off),
                       "cited_rank": made.cited_rank, "train_hit_rate": made.hit_rate,
                       "held_out_near_misses": len(held), "held_out_false_hit_rate": scored["false_hit_rate"],
                       "held_out_false_hits": scored["false_hits"]}
    full = choose(pairs, vectors, checks)
    consensus = frozenset.intersection(full.guards_off, *(frozenset(f["guards_off"]) for f in folds.values()))
    refit: dict[str, Any] = {}
    for kind in kinds:
        train = [p for p in pairs if p.hit or p.kind != kind]
        held = [p for p in pairs if not p.hit and p.kind == kind]
        made = _refit(train, vectors, checks, consensus)
        scored = _decide(held, vectors, made.rule(checks), "pairwise")
        refit[kind] = {"threshold": made.threshold, "cited_rank": made.cited_rank,
                       "held_out_false_hit_rate": scored["false_hit_rate"], "held_out_false_hits": scored["false_hits"]}
    on_all = _refit(pairs, vectors, checks, consensus)
    shipped = Choice(
        threshold=max([on_all.threshold, *(f["threshold"] for f in refit.values())]),
        guards_off=consensus,
        hit_rate=0.0,
        cited_rank=min([on_all.cited_rank, *(f["cited_rank"] for f in refit.values())], key=_strictness),
    )
    at_shipped = _decide(pairs, vectors, shipped.rule(checks), "pairwise")
    ranked = {shipped.cited_rank: checks[shipped.cited_rank]} if checks else None
    languages = _per_language(pairs, vectors, ranked, consensus)
    return {"folds": folds, "refit_folds": refit, "languages": languages,
            "all_kinds": {"threshold": full.threshold, "guards_off": sorted(full.guards_off),
                          "cited_rank": full.cited_rank, "hit_rate": full.hit_rate},
            "shipped": {"threshold": shipped.threshold, "guards_off": sorted(shipped.guards_off),
                        "cited_rank": shipped.cited_rank, "dev_hit_rate": at_shipped["hit_rate"],
                        "dev_false_hit_rate": at_shipped["false_hit_rate"],
                        "thresholds": {lang: chosen["threshold"] for lang, chosen in languages.items()}},
            "bounds": {"pairwise": MAX_PAIRWISE, "crowded": MAX_CROWDED}}


def _per_language(pairs: Sequence[Pair], vectors: Vectors, checks: Checks | None,
                  guards_off: frozenset[str]) -> dict[str, Any]:
    """Per language, on its pairs alone: the highest of its leave-kind-out refits' thresholds and of its
    choice on all kinds."""
    languages: dict[str, Any] = {}
    for lang in sorted({p.lang for p in pairs}):
        mine = [p for p in pairs if p.lang == lang]
        folds: dict[str, Any] = {}
        for kind in sorted({p.kind for p in mine if not p.hit}):
            train = [p for p in mine if p.hit or p.kind != kind]
            held = [p for p in mine if not p.hit and p.kind == kind]
            made = _refit(train, vectors, checks, guards_off)
            scored = _decide(held, vectors, made.rule(checks), "pairwise")
            folds[kind] = {"threshold": made.threshold, "held_out_false_hit_rate": scored["false_hit_rate"],
                           "held_out_false_hits": scored["false_hits"]}
        on_all = _refit(mine, vectors, checks, guards_off)
        threshold = max([on_all.threshold, *(f["threshold"] for f in folds.values())])
        at = _decide(mine, vectors, replace(on_all, threshold=threshold).rule(checks), "pairwise")
        languages[lang] = {"threshold": threshold, "folds": folds, "dev_hit_rate": at["hit_rate"],
                           "dev_false_hit_rate": at["false_hit_rate"]}
    return languages


def _refit(pairs: Sequence[Pair], vectors: Vectors, checks: Checks | None, guards_off: frozenset[str]) -> Choice:
    """The best threshold and evidence rank with the guard set fixed."""
    options = [
        replace(_lowest_safe(pairs, vectors, agrees, guards_off), cited_rank=rank)
        for rank, agrees in (checks.items() if checks else [(0, None)])
    ]
    return max(options, key=lambda c: (c.hit_rate, c.threshold, -_strictness(c.cited_rank)))
