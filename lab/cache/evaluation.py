"""Semantic-cache precision on the pair set: paraphrase hit rate and false-hit rate per threshold.

Each pair is (a: the cached question, b: the incoming one). Two views, both taking exactly the
decision :class:`cache.AnswerCache` takes (the same exact key, or cosine >= threshold, then the guards):

* **pairwise**: b against its own a only; a paraphrase should hit, a near-miss must not;
* **crowded**: every distinct a sits in one partition and b is looked up among all of them (the
  nearest ``candidates`` examined in order); a hit on any entry other than a paraphrase's own a
  is a false hit, as in a real cache full of unrelated questions.

Pairs carry a ``split``: the guards and the threshold were developed on ``dev``; ``holdout`` pairs
were written after the guards were frozen and are the numbers to quote.
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from cache.guards import fired_guards, question_language
from cache.keys import normalize_question
from cache.settings import CacheSettings
from cache.variants import align
from embeddings.protocol import Embedder

__all__ = [
    "PAIRS_PATH", "RESPELL_FLOOR", "THRESHOLDS", "Agrees", "Pair", "Rule", "choose_threshold", "crowded", "evaluate",
    "load_pairs", "pairwise", "rates_at", "respelt_texts", "subsets_of",
]

PAIRS_PATH = Path(__file__).parent / "data" / "pairs.jsonl"
THRESHOLDS = tuple(round(0.70 + 0.005 * i, 3) for i in range(60))
MAX_FALSE_HIT_RATE = 0.01
RESPELL_FLOOR: float = CacheSettings.model_fields["respell_floor"].default
Vectors = dict[str, npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class Pair:
    """``a`` is the cached question, ``b`` the incoming one. ``corpus`` names the corpus both are about
    (where the evidence check can be measured; empty: none); ``style`` and ``writer`` say how and by
    whom ``b`` was written, so held-out checks can leave out a style or a writer."""

    id: str
    lang: str
    kind: str
    hit: bool
    split: str
    a: str
    b: str
    corpus: str = ""
    style: str = ""
    writer: str = ""


Agrees = Callable[[str, str, str], bool]
"""``agrees(question, candidate, corpus)``: the question's own retrieval agrees with the evidence of
the entry cached for ``candidate`` (see :mod:`cache.evidence`)."""


def load_pairs(*paths: Path) -> list[Pair]:
    """The pairs of every file in order (the project's pair set when none is named)."""
    pairs: list[Pair] = []
    for path in paths or (PAIRS_PATH,):
        with path.open(encoding="utf-8") as f:
            pairs.extend(Pair(**json.loads(line)) for line in f if line.strip())
    return pairs


def embed_all(pairs: Sequence[Pair], embedder: Embedder, batch: int = 16) -> Vectors:
    texts = sorted({p.a for p in pairs} | {p.b for p in pairs})
    vectors: Vectors = {}
    for i in tqdm(range(0, len(texts), batch), desc="embedding questions", unit="batch"):
        chunk = texts[i : i + batch]
        vectors.update(zip(chunk, embedder.embed_queries(chunk), strict=True))
    return vectors


@functools.lru_cache(maxsize=65_536)
def _fired(question: str, candidate: str) -> frozenset[str]:
    return fired_guards(question, candidate)


@functools.lru_cache(maxsize=65_536)
def _same_key(question: str, candidate: str) -> bool:
    return normalize_question(question) == normalize_question(candidate)


@functools.lru_cache(maxsize=65_536)
def _respelt(question: str, candidate: str) -> str:
    return align(question, candidate)


@dataclass(frozen=True, slots=True)
class Rule:
    """The decision the cache takes: cosine >= the question's threshold (``by_language`` for its language,
    else ``threshold``; for the nearest entry under it but at least ``respell_floor``, the cosine of the
    question spelt as the entry is), no guard outside ``guards_off`` fires (when ``guards``), and, with
    ``agrees``, the question's retrieval agrees with the entry's evidence."""

    threshold: float
    guards: bool = True
    guards_off: frozenset[str] = frozenset()
    agrees: Agrees | None = None
    respell_floor: float = RESPELL_FLOOR
    by_language: tuple[tuple[str, float], ...] = ()

    def threshold_for(self, question: str) -> float:
        return dict(self.by_language).get(question_language(question), self.threshold)

    def similarity(self, vectors: Vectors, question: str, candidate: str, cosine: float) -> float:
        """What :meth:`cache.AnswerCache._similarity` makes of the nearest entry's ``cosine`` (the
        respelt question's vector must be in ``vectors``: :func:`respelt_texts`)."""
        if not self.respell_floor <= cosine < self.threshold_for(question):
            return cosine
        text = _respelt(question, candidate)
        if text == question or text not in vectors:
            return cosine
        return max(cosine, float(vectors[text] @ vectors[candidate]))

    def accepts(self, question: str, candidate: str, similarity: float, corpus: str) -> bool:
        if _same_key(question, candidate):
            return True  # an exact hit: served before any semantic check
        if similarity < self.threshold_for(question):
            return False
        if self.guards and _fired(question, candidate) - self.guards_off:
            return False
        return self.agrees is None or self.agrees(question, candidate, corpus)

    def measurable(self, pairs: Sequence[Pair]) -> list[Pair]:
        """The pairs this rule can be scored on: with an evidence check, those about a corpus."""
        return list(pairs) if self.agrees is None else [p for p in pairs if p.corpus]


def _rule(threshold: float | Rule, guards: bool) -> Rule:
    return threshold if isinstance(threshold, Rule) else Rule(threshold, guards)


def pairwise(pairs: Sequence[Pair], vectors: Vectors, threshold: float | Rule, guards: bool = True) -> dict[str, Any]:
    rule = _rule(threshold, guards)
    pairs = rule.measurable(pairs)
    hits = [p for p in pairs
            if rule.accepts(p.b, p.a, rule.similarity(vectors, p.b, p.a, float(vectors[p.a] @ vectors[p.b])), p.corpus)]
    return _rates(pairs, {p.id for p in hits if p.hit}, [p.id for p in hits if not p.hit], per_lookup=False)


def crowded(
    pairs: Sequence[Pair], vectors: Vectors, threshold: float | Rule, guards: bool = True, candidates: int = 3
) -> dict[str, Any]:
    """Every distinct ``a`` in one partition (one per corpus with an evidence check: a collection is
    a partition), each ``b`` looked up among them."""
    rule = _rule(threshold, guards)
    pairs = rule.measurable(pairs)
    good: set[str] = set()
    wrong: list[str] = []
    pools = {corpus: sorted({p.a for p in pairs if rule.agrees is None or p.corpus == corpus})
             for corpus in {p.corpus for p in pairs}}
    matrices = {corpus: np.stack([vectors[a] for a in pool]) for corpus, pool in pools.items()}
    for p in pairs:
        pool = pools[p.corpus]
        sims = matrices[p.corpus] @ vectors[p.b]
        nearest = [i for i in np.argsort(-sims)[: candidates + 1] if pool[i] != p.b][:candidates]
        for rank, i in enumerate(nearest):
            similarity = rule.similarity(vectors, p.b, pool[i], float(sims[i])) if rank == 0 else float(sims[i])
            if not rule.accepts(p.b, pool[i], similarity, p.corpus):
                continue
            if p.hit and pool[i] == p.a:
                good.add(p.id)
            else:
                wrong.append(p.id)
            break
    return _rates(pairs, good, wrong, per_lookup=True)


def respelt_texts(pairs: Sequence[Pair], vectors: Vectors, floor: float = RESPELL_FLOOR,
                  candidates: int = 3) -> set[str]:
    """The respelt questions whose vectors :meth:`Rule.similarity` may need: each ``b`` spelt as its own
    ``a`` and as its nearest cached questions (over all pairs and within its corpus), where the cosine
    is at least ``floor`` and the spelling changes."""
    pool = sorted({p.a for p in pairs})
    matrix = np.stack([vectors[a] for a in pool])
    texts: set[str] = set()
    for p in pairs:
        sims = matrix @ vectors[p.b]
        near = [pool[i] for i in np.argsort(-sims)[: 4 * candidates] if pool[i] != p.b]
        same = {q.a for q in pairs if q.corpus == p.corpus}
        for a in {p.a, *near[:candidates], *[x for x in near if x in same][:candidates]}:
            if float(vectors[a] @ vectors[p.b]) >= floor and (text := _respelt(p.b, a)) != p.b:
                texts.add(text)
    return texts


def _rates(pairs: Sequence[Pair], good: set[str], wrong: list[str], *, per_lookup: bool) -> dict[str, Any]:
    """Hit rate over paraphrases; false-hit rate over near-misses (pairwise) or over every lookup (crowded)."""
    positives = sum(p.hit for p in pairs)
    negatives = len(pairs) if per_lookup else len(pairs) - positives
    return {
        "pairs": len(pairs),
        "hits": len(good),
        "hit_rate": round(len(good) / max(positives, 1), 4),
        "false_hit_rate": round(len(wrong) / max(negatives, 1), 4),
        "false_hits": wrong,
    }


def sweep(
    pairs: Sequence[Pair],
    vectors: Vectors,
    thresholds: Sequence[float] = THRESHOLDS,
    agrees: Agrees | None = None,
    guards_off: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Per threshold: guarded pairwise and crowded rates, cosine-only rates and, with ``agrees`` and
    pairs about a corpus, the evidence-checked pairwise and crowded rates (over those pairs only)."""
    return [rates_at(pairs, vectors, t, agrees, guards_off)
            for t in tqdm(thresholds, desc="thresholds", unit="t", leave=False)]


def rates_at(
    pairs: Sequence[Pair],
    vectors: Vectors,
    threshold: float,
    agrees: Agrees | None = None,
    guards_off: frozenset[str] = frozenset(),
    by_language: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """One sweep row: the rates at ``threshold`` (``by_language``: the thresholds of questions in those
    languages)."""
    languages = tuple(sorted((by_language or {}).items()))
    guarded = Rule(threshold, guards_off=guards_off, by_language=languages)
    row: dict[str, Any] = {
        "threshold": threshold,
        "pairwise": pairwise(pairs, vectors, guarded),
        "pairwise_unguarded": pairwise(pairs, vectors, Rule(threshold, guards=False, by_language=languages)),
        "crowded": crowded(pairs, vectors, guarded),
    }
    if languages:
        row["thresholds"] = dict(languages)
    if agrees is not None and any(p.corpus for p in pairs):
        checked = Rule(threshold, guards_off=guards_off, agrees=agrees, by_language=languages)
        row["pairwise_evidence"] = pairwise(pairs, vectors, checked)
        row["crowded_evidence"] = crowded(pairs, vectors, checked)
    return row


def choose_threshold(rows: Sequence[dict[str, Any]], bound: float = MAX_FALSE_HIT_RATE) -> float:
    """The lowest threshold (most hits) whose pairwise and crowded false-hit rates stay within the
    bound at it and at every higher threshold."""

    def ok(row: dict[str, Any]) -> bool:
        return bool(row["pairwise"]["false_hit_rate"] <= bound and row["crowded"]["false_hit_rate"] <= bound)

    safe = [r["threshold"] for i, r in enumerate(rows) if all(ok(q) for q in rows[i:])]
    return float(min(safe)) if safe else float(rows[-1]["threshold"])


def embed_latency_ms(embedder: Embedder, questions: Sequence[str], rounds: int = 3) -> float:
    """Median milliseconds to embed one question (the semantic lookup's dominant cost)."""
    embedder.embed_queries(questions[:1])
    timings = []
    for _ in range(rounds):
        for q in questions:
            start = time.perf_counter()
            embedder.embed_queries([q])
            timings.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(timings), 2)


def subsets_of(pairs: Sequence[Pair]) -> dict[str, list[Pair]]:
    """``dev``, then every other split in the order it first appears, then each non-dev split by language
    (``holdout_en``, ``holdout_ko``, ...); empty subsets are left out."""
    splits = ["dev"] + [s for s in dict.fromkeys(p.split for p in pairs) if s != "dev"]
    subsets = {name: [p for p in pairs if p.split == name] for name in splits}
    for name in splits[1:]:
        subsets.update({f"{name}_{lang}": [p for p in subsets[name] if p.lang == lang] for lang in ("en", "ko")})
    return {name: rows for name, rows in subsets.items() if rows}


def evaluate(
    embedder: Embedder,
    pairs: Sequence[Pair],
    default_threshold: float,
    agrees: Agrees | None = None,
    guards_off: frozenset[str] = frozenset(),
    *,
    vectors: Vectors | None = None,
    chosen: tuple[float, str] | None = None,
    by_language: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The report: sweeps per subset, the threshold chosen on ``dev`` (``default_threshold``, the
    configured one, when the pairs have no ``dev`` split; ``chosen``: a threshold the caller chose and
    how; ``by_language``: the thresholds of questions in those languages, beside it), and the numbers at
    it. With ``agrees``, the rows also hold the evidence-checked rates of the pairs about a corpus."""
    if not pairs:
        raise ValueError("the pair set is empty")
    vectors = vectors if vectors is not None else embed_all(pairs, embedder)
    subsets = subsets_of(pairs)
    extra = {round(default_threshold, 3)} | ({chosen[0]} if chosen else set())
    grid = sorted(set(THRESHOLDS) | extra)
    sweeps = {name: sweep(rows, vectors, grid, agrees, guards_off) for name, rows in subsets.items()}
    if chosen is not None:
        threshold, source = chosen
    elif "dev" in sweeps:
        threshold, source = choose_threshold(sweeps["dev"]), "dev"
    else:
        threshold, source = round(default_threshold, 3), "configured"
    return {
        "pairs": {
            name: {"paraphrase": sum(p.hit for p in r), "near_miss": sum(not p.hit for p in r)}
            for name, r in subsets.items()
        },
        "chosen_threshold": threshold,
        "chosen_thresholds": dict(by_language or {}),
        "threshold_source": source,
        "guards_off": sorted(guards_off),
        "at_chosen": {name: rates_at(rows, vectors, threshold, agrees, guards_off, by_language)
                      for name, rows in subsets.items()},
        "embed_latency_ms_p50": {
            lang: embed_latency_ms(embedder, questions)
            for lang in ("en", "ko")
            if (questions := [p.b for p in pairs if p.lang == lang][:10])
        },
        "sweeps": {name: [_without_ids(row) for row in rows] for name, rows in sweeps.items()},
    }


def _without_ids(row: dict[str, Any]) -> dict[str, Any]:
    """A sweep row without its lists of false-hit ids (the chosen threshold's rows keep them)."""
    return {k: ({m: n for m, n in v.items() if m != "false_hits"} if isinstance(v, dict) else v)
            for k, v in row.items()}

