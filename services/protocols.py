"""The narrow interfaces between ragd's pieces. Each has an in-process and an HTTP implementation.

Every piece answers ``await piece.ready()`` alike: its checks by name (models loaded, store or server
reachable), ready when all hold. It never raises: a check that cannot be made is ``False``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from services.contracts import (
    AnswerContext,
    ChatMessage,
    CollectionConfig,
    CollectionInfo,
    Completion,
    Delta,
    DocumentIn,
    DocumentOut,
    EmbedRequest,
    EmbedResponse,
    GenerationParams,
    GuardCheckRequest,
    GuardDecision,
    IngestReport,
    RetrieveRequest,
    RetrieveResponse,
)

__all__ = ["Corpus", "EpochStore", "Generator", "Guard", "Retriever"]


@runtime_checkable
class Retriever(Protocol):
    """Hybrid search over one tenant's collection, and the vectors of its dense embedder."""

    async def retrieve(self, request: RetrieveRequest) -> RetrieveResponse: ...
    async def embed(self, request: EmbedRequest) -> EmbedResponse: ...
    async def ready(self) -> dict[str, bool]: ...


@runtime_checkable
class Corpus(Protocol):
    """Collections and documents of a tenant. Every change bumps the collection's epoch.

    A collection that does not exist *or belongs to another tenant* raises NotFoundError alike.
    """

    async def create_collection(self, tenant: str, name: str, config: CollectionConfig) -> CollectionInfo: ...
    async def list_collections(self, tenant: str) -> list[CollectionInfo]: ...
    async def delete_collection(self, tenant: str, name: str) -> None: ...
    async def add_documents(self, tenant: str, name: str, docs: Sequence[DocumentIn]) -> IngestReport: ...
    async def get_document(self, tenant: str, name: str, doc_id: str) -> DocumentOut: ...
    async def delete_document(self, tenant: str, name: str, doc_id: str) -> IngestReport: ...


@runtime_checkable
class Generator(Protocol):
    """Writes an answer: an OpenAI-compatible chat model (vLLM in production, llama.cpp on CPU) reads
    ``messages``; an extractive backend answers from ``context`` (the question and its sources). A call without
    ``context`` (a follow-up rewrite) asks the model alone."""

    async def complete(self, messages: Sequence[ChatMessage], params: GenerationParams,
                       context: AnswerContext | None = None) -> Completion: ...
    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams,
               context: AnswerContext | None = None) -> AsyncIterator[Delta]: ...
    async def ready(self) -> dict[str, bool]: ...


@runtime_checkable
class Guard(Protocol):
    """Input and output rails. ``policy_version`` is part of every cache key."""

    @property
    def policy_version(self) -> str: ...
    async def check(self, request: GuardCheckRequest) -> GuardDecision: ...
    async def ready(self) -> dict[str, bool]: ...


@runtime_checkable
class EpochStore(Protocol):
    """The corpus epoch of each (tenant, collection): an opaque token that changes on every change.

    Tokens are random, not counters, so a store that lost its state never hands out an old token again.
    """

    async def get(self, tenant: str, collection: str) -> str: ...
    async def bump(self, tenant: str, collection: str) -> str: ...
