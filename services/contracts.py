"""Wire contracts between ragd services (versioned). Used in process and over HTTP alike.

Bump :data:`CONTRACT_VERSION` on any incompatible change; HTTP clients send it in
``x-ragd-contract`` and servers refuse a different major version.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.filters import MetadataFilter

__all__ = [
    "CONTRACT_VERSION",
    "AnswerContext",
    "ChatMessage",
    "CollectionConfig",
    "CollectionInfo",
    "Completion",
    "Delta",
    "DocumentIn",
    "DocumentOut",
    "EmbedRequest",
    "EmbedResponse",
    "GenerationParams",
    "GuardCheckRequest",
    "GuardDecision",
    "IngestReport",
    "RailResult",
    "RetrieveRequest",
    "RetrieveResponse",
    "ScoredChunk",
    "Usage",
]

CONTRACT_VERSION = "1"

MetadataValue = str | int | float | bool | list[str]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# ---------------------------------------------------------------- corpus and retrieval


class CollectionConfig(_Wire):
    """Per-collection index parameters; fixed when the collection is created."""

    hnsw_m: int = Field(16, ge=2, le=128, description="HNSW graph degree M.")
    hnsw_ef_construction: int = Field(100, ge=8, le=2000, description="HNSW ef_construction.")
    hnsw_ef_search: int = Field(100, ge=1, le=2000, description="HNSW ef_search (applied on index load).")


class CollectionInfo(_Wire):
    name: str
    documents: int = 0
    chunks: int = 0
    epoch: str = ""
    config: CollectionConfig = CollectionConfig()


class DocumentIn(_Wire):
    """A document to ingest. Without ``id`` the id is derived from the content hash."""

    id: str | None = Field(None, max_length=256)
    title: str = Field("", max_length=1024)
    text: str
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class DocumentOut(_Wire):
    id: str
    title: str
    text: str
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    content_hash: str
    chunk_ids: list[str]


class IngestReport(_Wire):
    """What an ingest or delete changed. ``epoch`` is the collection's epoch after the change."""

    collection: str
    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    epoch: str = ""


class ScoredChunk(_Wire):
    chunk_id: str
    doc_id: str
    title: str = ""
    text: str
    score: float
    ranks: dict[str, int] = Field(default_factory=dict, description="1-based rank on each side, e.g. bm25, dense.")
    side_scores: dict[str, float] = Field(
        default_factory=dict, description="Raw score on each side that ranked it: bm25 (BM25), dense and english "
                                          "(cosine similarity of the best window); with the BM25 side, "
                                          "bm25_coverage: the IDF-weighted share of the question's terms the "
                                          "chunk holds (0..1).")
    metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class RetrieveRequest(_Wire):
    tenant: str
    collection: str
    query: str = Field(min_length=1)
    top_k: int = Field(5, ge=1, le=100)
    filter: MetadataFilter | None = Field(
        None, description="Search only documents whose metadata match this (services/filters.py grammar).")


class RetrieveResponse(_Wire):
    chunks: list[ScoredChunk]
    epoch: str = ""
    degraded: list[str] = Field(default_factory=list, description="Parts that were skipped, e.g. dense, rerank.")
    timings_ms: dict[str, float] = Field(default_factory=dict)


class EmbedRequest(_Wire):
    """Texts for the retriever's dense embedder (what ``/v1/embeddings`` serves)."""

    texts: list[str] = Field(min_length=1)
    input_type: Literal["query", "passage"] = Field(
        "query", description="e5's 'query: ' or 'passage: ' prefix (the retriever embeds questions as queries and "
                             "chunks as passages).")
    truncate: bool = Field(False, description="Cut a text longer than the model reads instead of refusing it.")
    dimensions: int | None = Field(None, ge=1, description="Required vector length, when the caller names one.")


class EmbedResponse(_Wire):
    model: str = Field(description="The embedder's name, as the index records it.")
    vectors: list[list[float]]
    tokens: list[int] = Field(description="Tokens fed per text, after truncation.")


# ---------------------------------------------------------------- generation


class ChatMessage(_Wire):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerationParams(_Wire):
    """Every parameter that changes the output; all of it is part of a cache key."""

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None


class Usage(_Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class AnswerContext(_Wire):
    """What a generator gets beside the rendered prompt: the standalone question, its language and the numbered
    sources in prompt order (source n is ``sources[n - 1]``), for a backend that answers from them directly."""

    question: str
    language: Literal["en", "ko"] = "en"
    sources: list[ScoredChunk] = Field(default_factory=list)


class Completion(_Wire):
    text: str
    finish_reason: str = "stop"
    usage: Usage = Usage()


class Delta(_Wire):
    """One streamed piece: text, and on the last piece the finish reason and usage."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None


# ---------------------------------------------------------------- guardrails


class GuardCheckRequest(_Wire):
    kind: Literal["input", "output"]
    text: str
    tenant: str = ""
    language: str | None = Field(None, description="'en' or 'ko'; detected when absent.")
    system_prompt: str | None = Field(None, description="For output rails: the prompt that must not leak.")
    sources: list[str] = Field(default_factory=list, description="For the optional grounding check.")
    strict: bool = Field(False, description="For output rails: the input was flagged, check the answer tightened.")


class RailResult(_Wire):
    rail: str
    fired: bool
    score: float = 0.0
    action: Literal["pass", "redact", "flag", "block"] = "pass"
    detail: str = ""
    rule: str | None = Field(None, description="Id of the pattern rule that fired the rail (guardrails/rules.yaml); "
                                               "none when no rule did.")


class GuardDecision(_Wire):
    action: Literal["pass", "redact", "flag", "block"] = Field(
        description="block: refuse; flag: answer with flag_actions (hardened prompt, no cache write, strict output "
                    "rails); redact: answer with the redacted text; pass.")
    text: str = Field(description="The text to use from here on (redacted where a rail redacted).")
    flag_actions: list[str] = Field(default_factory=list, description="When flagged: what the answer gets.")
    rails: list[RailResult] = Field(default_factory=list)
    policy_version: str = ""
    refusal: str | None = Field(None, description="Message to answer with when blocked, in the user's language.")
    latency_ms: float = 0.0
