"""Abstention: when the retrieved evidence does not cover the question, the answer says so in the question's
language, cites nothing and calls no model.

The evidence score is a linear score per language over signals of the retrieved sources, all computed from what
retrieval already returned (no model call); ``ragd train abstention`` chooses the weights on calibration
questions, never on evaluated ones. The signals (:data:`FEATURES`):

- ``coverage``: the IDF-weighted share of the question's units (English stems, Korean character bigrams) the
  best source sentence covers, its context (title, previous sentence) counted at ``context_weight``;
- ``own``: the same for the best sentence alone, without its context;
- ``typed``: ``coverage`` of the best sentence that can hold the kind of answer asked for (a number for "how
  many" / "몇", a date for "when" / "언제"; :mod:`generator.answer_type`); 0 when no sentence can;
- ``typed_miss``: 1 when the question asks for a number or a date and the best sentence holds none;
- ``source``: the best coverage of one whole source (title and text);
- ``union``: the coverage of all sources together (1 - ``union`` is the share of the question no source has);
- ``dense``, ``dense_gap``: the best raw dense cosine among the sources, and its lead over the second best;
- ``bm25``, ``bm25_gap``: log(1 + the best raw BM25 score), and its lead over the second best (same scale);
- ``english``, ``english_gap``: as ``dense`` for the English embedder's side (0 where it did not run);
- ``lexical``, ``lexical_top``: the best, and the first source's, ``bm25_coverage`` side score: the share of
  the question's BM25 terms (English stems, Korean morphemes) a source holds, each weighted by its IDF over
  the whole collection, so a rare name, number or date the question asks about counts most, and most of all
  when no passage holds it;
- ``agree``: 1 when the first source is the first of both the dense and the BM25 ranking;
- ``units``: log(1 + the number of distinct question units).

When a retrieval side the score weighs failed for the question (the retriever reports it as degraded), the
question is answered rather than judged on signals that read 0.

The sources' fused score is left out: it is normalised per query, so it says which source is best, not whether
any source is good.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from generator.answer_type import answer_type, holds
from generator.evidence import gather
from generator.settings import GeneratorSettings
from services.contracts import ScoredChunk
from services.telemetry import ABSTENTIONS

__all__ = ["FEATURES", "Abstainer", "Decision", "abstainer_from", "evidence_features"]

_log = logging.getLogger("ragd.pipeline")

FEATURES = ("coverage", "own", "typed", "typed_miss", "source", "union", "dense", "dense_gap", "bm25", "bm25_gap",
            "english", "english_gap", "lexical", "lexical_top", "agree", "units")


# the retrieval sides each signal reads (the others are lexical, read from the sources' text)
_SIDES: dict[str, tuple[str, ...]] = {"dense": ("dense",), "dense_gap": ("dense",), "bm25": ("bm25",),
                                      "bm25_gap": ("bm25",), "english": ("english",), "english_gap": ("english",),
                                      "lexical": ("bm25",), "lexical_top": ("bm25",), "agree": ("dense", "bm25")}


def _top_two(values: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(values, reverse=True)
    return (ordered[0] if ordered else 0.0), (ordered[1] if len(ordered) > 1 else 0.0)


def evidence_features(question: str, sources: Sequence[ScoredChunk], *, context_weight: float,
                      language: str = "en") -> dict[str, float]:
    """The signals the evidence score is made of (all 0 when nothing was retrieved)."""
    found = gather(question, sources, context_weight=context_weight)
    best = max(found.sentences, key=lambda s: s.coverage, default=None)
    kind = answer_type(question, language)
    typed = [s.coverage for s in found.sentences if holds(s.text, kind)]
    dense, dense_second = _top_two([c.side_scores.get("dense", 0.0) for c in sources])
    bm25, bm25_second = _top_two([math.log1p(c.side_scores.get("bm25", 0.0)) for c in sources])
    english, english_second = _top_two([c.side_scores.get("english", 0.0) for c in sources])
    lexical = [c.side_scores.get("bm25_coverage", 0.0) for c in sources]
    first = sources[0].ranks if sources else {}
    return {
        "coverage": best.coverage if best is not None else 0.0,
        "own": max((s.own for s in found.sentences), default=0.0),
        "typed": max(typed, default=0.0),
        "typed_miss": float(best is not None and kind != "any" and not holds(best.text, kind)),
        "source": max((found.covered(u) for u in found.source_units), default=0.0) if found.wanted else 0.0,
        "union": found.covered(set().union(*found.source_units)) if found.wanted and sources else 0.0,
        "dense": dense,
        "dense_gap": dense - dense_second,
        "bm25": bm25,
        "bm25_gap": bm25 - bm25_second,
        "english": english,
        "english_gap": english - english_second,
        "lexical": max(lexical, default=0.0),
        "lexical_top": lexical[0] if lexical else 0.0,
        "agree": float(first.get("dense") == 1 and first.get("bm25") == 1),
        "units": math.log1p(len(set(found.wanted))),
    }


@dataclass(frozen=True)
class Decision:
    abstain: bool
    score: float
    text: str = ""


class Abstainer:
    """Decides per question; ``weights`` and ``thresholds`` are per language ('en', 'ko'; others use 'en')."""

    def __init__(self, *, weights: Mapping[str, Mapping[str, float]], thresholds: Mapping[str, float],
                 texts: Mapping[str, str], context_weight: float = 0.75) -> None:
        unknown = {name for w in weights.values() for name in w} - {"bias", *FEATURES}
        if unknown:
            raise ValueError(f"abstention weights name unknown signals {sorted(unknown)}; known: {FEATURES}")
        self.weights = {lang: dict(w) for lang, w in weights.items()}
        self.thresholds = dict(thresholds)
        self.texts = dict(texts)
        self.context_weight = context_weight

    def score(self, language: str, features: Mapping[str, float]) -> float:
        weights = self.weights.get(language, self.weights.get("en", {}))
        return weights.get("bias", 0.0) + sum(weights.get(name, 0.0) * features[name] for name in FEATURES)

    def failed_sides(self, language: str, degraded: Sequence[str]) -> list[str]:
        """Retrieval sides the language's score weighs that failed for this question (``degraded``, as the
        retriever reports it): their signals read 0 and would decline every question."""
        weights = self.weights.get(language, self.weights.get("en", {}))
        wanted = {side for name, w in weights.items() if w for side in _SIDES.get(name, ())}
        return sorted(wanted & set(degraded))

    def decide(self, question: str, language: str, sources: Sequence[ScoredChunk],
               degraded: Sequence[str] = ()) -> Decision:
        failed = self.failed_sides(language, degraded) if sources else []
        if failed:  # judged on signals that are not there, every answer would be declined: answer instead
            _log.warning("abstention skipped", extra={"ragd": {"language": language, "failed_sides": failed}})
            return Decision(False, math.nan)
        features = evidence_features(question, sources, context_weight=self.context_weight, language=language)
        score = self.score(language, features)
        threshold = self.thresholds.get(language, self.thresholds.get("en", 0.0))
        if sources and score >= threshold:
            return Decision(False, score)
        ABSTENTIONS.labels(language if language in self.texts else "other").inc()
        _log.info("abstained", extra={"ragd": {"language": language, "evidence": round(score, 4),
                                               "threshold": threshold, "sources": len(sources),
                                               **{k: round(v, 4) for k, v in features.items()}}})
        return Decision(True, score, self.texts.get(language, self.texts.get("en", "")))


def abstainer_from(settings: GeneratorSettings) -> Abstainer | None:
    """The configured abstention, or None when it is off."""
    if not settings.abstain:
        return None
    return Abstainer(weights=settings.abstain_weights, thresholds=settings.abstain_thresholds,
                     texts={"en": settings.abstain_text_en, "ko": settings.abstain_text_ko})
