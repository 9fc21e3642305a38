"""Semantic-cache precision on the pair set: paraphrase hit rate and false-hit rate per threshold.

Each pair is (a: the cached question, b: the incoming one). Two views, both taking exactly the
decision :class:`cache.AnswerCache` takes (cosine >= threshold, then the precision guards):

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from cache.embedders import QuestionEmbedder
from cache.guards import reject_reason

__all__ = ["PAIRS_PATH", "THRESHOLDS", "Pair", "choose_threshold", "evaluate", "load_pairs", "subsets_of"]

PAIRS_PATH = Path(__file__).parent / "data" / "pairs.jsonl"
THRESHOLDS = tuple(round(0.70 + 0.005 * i, 3) for i in range(60))
MAX_FALSE_HIT_RATE = 0.01
Vectors = dict[str, npt.NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class Pair:
    id: str
    lang: str
    kind: str
    hit: bool
    split: str
    a: str
    b: str


def load_pairs(path: Path = PAIRS_PATH) -> list[Pair]:
    with path.open(encoding="utf-8") as f:
        return [Pair(**json.loads(line)) for line in f if line.strip()]


def embed_all(pairs: Sequence[Pair], embedder: QuestionEmbedder, batch: int = 16) -> Vectors:
    texts = sorted({p.a for p in pairs} | {p.b for p in pairs})
    vectors: Vectors = {}
    for i in tqdm(range(0, len(texts), batch), desc="embedding questions", unit="batch"):
        chunk = texts[i : i + batch]
        vectors.update(zip(chunk, embedder.embed(chunk), strict=True))
    return vectors


@functools.lru_cache(maxsize=65_536)
def _rejected(question: str, candidate: str) -> bool:
    return reject_reason(question, candidate) is not None


def _accepted(question: str, candidate: str, similarity: float, threshold: float, guards: bool) -> bool:
    return similarity >= threshold and not (guards and _rejected(question, candidate))


def pairwise(pairs: Sequence[Pair], vectors: Vectors, threshold: float, guards: bool = True) -> dict[str, Any]:
    hits = [p for p in pairs if _accepted(p.b, p.a, float(vectors[p.a] @ vectors[p.b]), threshold, guards)]
    return _rates(pairs, {p.id for p in hits if p.hit}, [p.id for p in hits if not p.hit], per_lookup=False)


def crowded(
    pairs: Sequence[Pair], vectors: Vectors, threshold: float, guards: bool = True, candidates: int = 3
) -> dict[str, Any]:
    pool = sorted({p.a for p in pairs})
    matrix = np.stack([vectors[a] for a in pool])
    good: set[str] = set()
    wrong: list[str] = []
    for p in pairs:
        sims = matrix @ vectors[p.b]
        for i in np.argsort(-sims)[:candidates]:
            if pool[i] == p.b or not _accepted(p.b, pool[i], float(sims[i]), threshold, guards):
                continue
            if p.hit and pool[i] == p.a:
                good.add(p.id)
            else:
                wrong.append(p.id)
            break
    return _rates(pairs, good, wrong, per_lookup=True)


def _rates(pairs: Sequence[Pair], good: set[str], wrong: list[str], *, per_lookup: bool) -> dict[str, Any]:
    """Hit rate over paraphrases; false-hit rate over near-misses (pairwise) or over every lookup (crowded)."""
    positives = sum(p.hit for p in pairs)
    negatives = len(pairs) if per_lookup else len(pairs) - positives
    return {
        "hit_rate": round(len(good) / max(positives, 1), 4),
        "false_hit_rate": round(len(wrong) / max(negatives, 1), 4),
        "false_hits": wrong,
    }


def sweep(pairs: Sequence[Pair], vectors: Vectors, thresholds: Sequence[float] = THRESHOLDS) -> list[dict[str, Any]]:
    rows = []
    for t in tqdm(thresholds, desc="thresholds", unit="t", leave=False):
        rows.append(
            {
                "threshold": t,
                "pairwise": pairwise(pairs, vectors, t),
                "pairwise_unguarded": pairwise(pairs, vectors, t, guards=False),
                "crowded": crowded(pairs, vectors, t),
            }
        )
    return rows


def choose_threshold(rows: Sequence[dict[str, Any]], bound: float = MAX_FALSE_HIT_RATE) -> float:
    """The lowest threshold (most hits) whose pairwise and crowded false-hit rates stay within the
    bound at it and at every higher threshold."""

    def ok(row: dict[str, Any]) -> bool:
        return bool(row["pairwise"]["false_hit_rate"] <= bound and row["crowded"]["false_hit_rate"] <= bound)

    safe = [r["threshold"] for i, r in enumerate(rows) if all(ok(q) for q in rows[i:])]
    return float(min(safe)) if safe else float(rows[-1]["threshold"])


def embed_latency_ms(embedder: QuestionEmbedder, questions: Sequence[str], rounds: int = 3) -> float:
    """Median milliseconds to embed one question (the semantic lookup's dominant cost)."""
    embedder.embed(questions[:1])
    timings = []
    for _ in range(rounds):
        for q in questions:
            start = time.perf_counter()
            embedder.embed([q])
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


def evaluate(embedder: QuestionEmbedder, pairs: Sequence[Pair], default_threshold: float) -> dict[str, Any]:
    """The report: sweeps per subset, the threshold chosen on ``dev`` (``default_threshold``, the
    configured one, when the pairs have no ``dev`` split), and the numbers at it."""
    if not pairs:
        raise ValueError("the pair set is empty")
    vectors = embed_all(pairs, embedder)
    subsets = subsets_of(pairs)
    grid = sorted(set(THRESHOLDS) | {round(default_threshold, 3)})
    sweeps = {name: sweep(rows, vectors, grid) for name, rows in subsets.items()}
    chosen = choose_threshold(sweeps["dev"]) if "dev" in sweeps else round(default_threshold, 3)
    return {
        "pairs": {
            name: {"paraphrase": sum(p.hit for p in r), "near_miss": sum(not p.hit for p in r)}
            for name, r in subsets.items()
        },
        "chosen_threshold": chosen,
        "threshold_source": "dev" if "dev" in sweeps else "configured",
        "at_chosen": {name: next(r for r in rows if r["threshold"] == chosen) for name, rows in sweeps.items()},
        "embed_latency_ms_p50": {
            lang: embed_latency_ms(embedder, questions)
            for lang in ("en", "ko")
            if (questions := [p.b for p in pairs if p.lang == lang][:10])
        },
        "sweeps": sweeps,
    }

