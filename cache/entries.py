"""What the cache stores and what a lookup returns."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CacheLookup", "CachedAnswer", "Outcome"]

Outcome = Literal["exact", "semantic", "miss", "bypass"]


class CachedAnswer(BaseModel):
    """A complete, unblocked answer as it was returned, with the standalone question it answered."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    content: str
    citations: list[dict[str, Any]] = Field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created: float = Field(default_factory=time.time, description="Unix time the answer was generated.")
    model: str = ""
    question: str = Field("", description="The standalone question the answer was stored under.")
    cited_chunks: list[str] = Field(
        default_factory=list, description="Chunk ids the answer named (empty: it named none in particular).")
    retrieved_chunks: list[str] = Field(
        default_factory=list, description="Chunk ids retrieved for the question, best first (the answer's top-k).")


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """The result of one lookup. ``answer`` is set exactly when ``outcome`` is exact or semantic.

    ``similarity`` is the cosine of a semantic hit (for logs and metrics; never a key). ``degraded``: the
    lookup was bypassed because the store failed or its breaker is open (counted by the cache).
    """

    outcome: Outcome
    answer: CachedAnswer | None = None
    similarity: float | None = None
    degraded: bool = False

    @property
    def hit(self) -> bool:
        return self.answer is not None
