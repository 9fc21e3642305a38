"""The numbers of ``ragd eval rag``: per-question scores, then the summary (overall and per language)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.answers.runner import Outcome
from lab.answers.scoring import answer_f1, answer_sentences, contains_gold, is_abstention, supported

__all__ = ["Scored", "score", "summarize"]

SupportJudge = Callable[[str, Sequence[str]], bool]


@dataclass
class Scored:
    """One question's outcome with its scores (None where a score does not apply)."""

    outcome: Outcome
    abstained: bool
    contains: bool | None = None
    f1: float | None = None
    cited_gold: bool | None = None
    citation_precision: float | None = None
    sentences: int = 0
    supported_sentences: int = 0
    unsupported: list[str] = field(default_factory=list)
    answered_anyway: bool | None = None  # a held-out question answered with a gold answer from a retained document

    @property
    def failures(self) -> list[str]:
        """Why this answer is wrong, most serious first (empty when nothing is)."""
        o, reasons = self.outcome, []
        if o.error:
            reasons.append(f"error: {o.error}")
        if not o.item.answerable and not self.abstained:
            reasons.append("answered a question the documents do not cover"
                           + (" (a retained document holds its gold answer)" if self.answered_anyway else ""))
        if o.item.answerable and self.abstained:
            reasons.append("abstained on an answerable question")
        if self.contains is False:
            reasons.append("gold answer not in the answer")
        if self.cited_gold is False:
            reasons.append("no gold passage cited")
        if self.sentences and self.supported_sentences < self.sentences:
            reasons.append(f"{self.sentences - self.supported_sentences}/{self.sentences} sentences unsupported")
        if o.finish_reason and o.finish_reason != "stop":
            reasons.append(f"finish_reason {o.finish_reason}")
        return reasons


def score(outcome: Outcome, docs: Mapping[str, str], *, short_answers: bool, judge: SupportJudge | None = None,
          abstention_texts: Iterable[str] = ()) -> Scored:
    """Scores of one outcome. ``docs`` maps document id -> text (the cited sources' full text)."""
    item = outcome.item
    abstained = outcome.error is None and is_abstention(outcome.answer, len(outcome.cited_docs), abstention_texts)
    scored = Scored(outcome, abstained)
    if not item.answerable and outcome.error is None and short_answers and item.answers and not abstained:
        scored.answered_anyway = contains_gold(outcome.answer, item.answers)
    if not item.answerable or outcome.error is not None:
        return scored
    if short_answers and item.answers:
        scored.contains = not abstained and contains_gold(outcome.answer, item.answers)
        scored.f1 = 0.0 if abstained else answer_f1(outcome.answer, item.answers)
    gold = set(item.gold_docs)
    scored.cited_gold = bool(gold & set(outcome.cited_docs))
    if outcome.cited_docs:
        scored.citation_precision = sum(d in gold for d in outcome.cited_docs) / len(outcome.cited_docs)
    if not abstained:
        sources = [docs.get(d, "") for d in dict.fromkeys(outcome.cited_docs)]
        check = judge or supported
        for sentence in answer_sentences(outcome.answer):
            scored.sentences += 1
            if check(sentence, sources):
                scored.supported_sentences += 1
            else:
                scored.unsupported.append(sentence)
    return scored


def _mean(values: Iterable[float | bool | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return round(statistics.fmean(kept), 4) if kept else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 1)


def summarize(rows: Sequence[Scored]) -> dict[str, Any]:
    """The top-level numbers of a run (or of one language's questions)."""
    answerable = [r for r in rows if r.outcome.item.answerable]
    unanswerable = [r for r in rows if not r.outcome.item.answerable]
    sentences = sum(r.sentences for r in rows)
    finished = [r for r in rows if r.outcome.error is None]
    return {
        "answer_contains_gold": _mean(r.contains for r in answerable),
        "answer_f1": _mean(r.f1 for r in answerable),
        "cited_gold": _mean(r.cited_gold for r in answerable),
        "citation_precision": _mean(r.citation_precision for r in answerable),
        "faithfulness": round(sum(r.supported_sentences for r in rows) / sentences, 4) if sentences else None,
        "abstain_unanswerable": _mean(r.abstained for r in unanswerable),
        "abstain_answerable": _mean(r.abstained for r in answerable),
        "held_out_answered": sum(bool(r.answered_anyway) for r in unanswerable),
        "finish_stop": _mean(r.outcome.finish_reason == "stop" for r in rows),
        "latency_ms_p50": _percentile([r.outcome.latency_ms for r in finished], 50),
        "latency_ms_p95": _percentile([r.outcome.latency_ms for r in finished], 95),
        "ttft_ms_p50": _percentile([r.outcome.ttft_ms for r in finished if r.outcome.ttft_ms is not None], 50),
        "n": len(rows),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "errors": sum(r.outcome.error is not None for r in rows),
    }
