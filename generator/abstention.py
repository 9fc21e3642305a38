"""Abstention: when the retrieved evidence does not cover the question, the answer says so in the question's
language, cites nothing and calls no model.

The evidence score is a linear score per language over signals of the retrieved sources (chosen by
``ragd train abstention`` on calibration questions, never on evaluated ones):

- ``coverage``: how much of the question the best sentence of the sources covers (:mod:`generator.evidence`);
- ``dense``: the best dense cosine similarity among the sources (the retriever's raw dense score);
- ``bm25``: log(1 + the best raw BM25 score).

The sources' fused score is left out: it is normalised per query, so it says which source is best, not
whether any source is good.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from generator.evidence import score_sentences
from generator.settings import GeneratorSettings
from services.contracts import ScoredChunk
from services.telemetry import ABSTENTIONS

__all__ = ["FEATURES", "Abstainer", "Decision", "abstainer_from", "evidence_features"]

_log = logging.getLogger("ragd.pipeline")

FEATURES = ("coverage", "dense", "bm25")


def evidence_features(question: str, sources: Sequence[ScoredChunk], *, context_weight: float) -> dict[str, float]:
    """The signals the evidence score is made of (all 0 when nothing was retrieved)."""
    sentences = score_sentences(question, sources, context_weight=context_weight)
    return {
        "coverage": max((s.coverage for s in sentences), default=0.0),
        "dense": max((c.side_scores.get("dense", 0.0) for c in sources), default=0.0),
        "bm25": math.log1p(max((c.side_scores.get("bm25", 0.0) for c in sources), default=0.0)),
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
        self.weights = {lang: dict(w) for lang, w in weights.items()}
        self.thresholds = dict(thresholds)
        self.texts = dict(texts)
        self.context_weight = context_weight

    def score(self, language: str, features: Mapping[str, float]) -> float:
        weights = self.weights.get(language, self.weights.get("en", {}))
        return weights.get("bias", 0.0) + sum(weights.get(name, 0.0) * features[name] for name in FEATURES)

    def decide(self, question: str, language: str, sources: Sequence[ScoredChunk]) -> Decision:
        features = evidence_features(question, sources, context_weight=self.context_weight)
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
