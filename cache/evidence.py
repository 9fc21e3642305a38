"""Evidence-checked semantic hits: a paraphrase is served only if its own retrieval agrees.

A cached answer carries the evidence it was built from: the chunk ids it cited and the ids of the
top-k chunks retrieved for its question. A semantic candidate that passed the threshold and the
guards is served only if the incoming question's own top-k holds enough of that evidence: a
question whose retrieval finds other passages asks something else (another entity, another scope),
whatever its wording shares with the cached one. This is RAG-specific precision: the corpus itself
is the judge of whether two questions are about the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from cache.entries import CachedAnswer
from services.telemetry import CACHE_SEMANTIC_REJECTED, child

__all__ = ["EvidenceCheck", "EvidenceSource", "RejectReason", "agreement"]

log = logging.getLogger("ragd.cache")

EvidenceSource = Callable[[], Awaitable[Sequence[str]]]
"""Returns the chunk ids of the incoming question's own top-k (the retrieval a miss needs anyway)."""

RejectReason = Literal["guard", "verifier", "evidence", "no_evidence", "retrieval"]


@dataclass(frozen=True, slots=True)
class Agreement:
    """How much of a cached answer's evidence the new question's top-k holds (fractions in [0, 1]), and whether
    it ranks the answer's lead source high enough."""

    cited: float
    overlap: float
    lead: bool = True


def agreement(answer: CachedAnswer, retrieved: Sequence[str], cited_rank: int = 0) -> Agreement | None:
    """The cited fraction (the answer's cited chunks found in ``retrieved``; an answer that named no particular
    source stands on its best-ranked chunk), the top-k overlap (the cached top-k found in ``retrieved``, over the
    shorter of the two lists) and the lead: the cited chunk its own question ranked best must rank among the
    first ``cited_rank`` of ``retrieved`` (0: anywhere), or no lower than the cached question ranked it (an
    answer that cites its question's third source cannot ask the new question to rank it second). None when
    the entry has no evidence."""
    if not answer.retrieved_chunks:
        return None
    found = set(retrieved)
    cited = answer.cited_chunks or answer.retrieved_chunks[:1]
    own_rank = {chunk: i for i, chunk in reversed(list(enumerate(answer.retrieved_chunks)))}
    lead = min(cited, key=lambda c: own_rank.get(c, len(own_rank)))
    depth = min(len(answer.retrieved_chunks), len(retrieved)) or 1
    reach = max(cited_rank, own_rank.get(lead, 0) + 1) if cited_rank else len(retrieved)
    return Agreement(
        cited=sum(c in found for c in cited) / len(cited),
        overlap=sum(c in found for c in answer.retrieved_chunks[:depth]) / depth,
        lead=lead in retrieved[:reach],
    )


class EvidenceCheck:
    """Accepts a candidate when the lead source ranks high enough (``cited_rank``; 0: anywhere in the top-k), and
    the cited fraction and the top-k overlap reach their minimums."""

    def __init__(self, min_cited: float, min_overlap: float, cited_rank: int = 0) -> None:
        self.min_cited = min_cited
        self.min_overlap = min_overlap
        self.cited_rank = cited_rank

    def reason(self, answer: CachedAnswer, retrieved: Sequence[str]) -> RejectReason | None:
        """None when the evidence agrees; otherwise why the candidate is refused."""
        found = agreement(answer, retrieved, self.cited_rank)
        if found is None:
            return "no_evidence"
        if not found.lead or found.cited < self.min_cited or found.overlap < self.min_overlap:
            return "evidence"
        return None


def count_rejection(reason: RejectReason, question: str, candidate: str, similarity: float) -> None:
    """One refused candidate into ``ragd_cache_semantic_rejected{reason}`` and the log (no user text in
    the metric; the log line carries the two questions' lengths and the cosine only)."""
    child(CACHE_SEMANTIC_REJECTED, reason).inc()
    log.info("semantic candidate refused", extra={"ragd": {
        "reason": reason, "similarity": round(similarity, 4), "question_chars": len(question),
        "candidate_chars": len(candidate)}})
