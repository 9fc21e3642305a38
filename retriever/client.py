"""HttpRetriever: the Corpus and Retriever protocols over the retriever service's internal HTTP API."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from retriever.wire import AddDocumentsRequest, CreateCollectionRequest
from services.contracts import (
    CollectionConfig,
    CollectionInfo,
    DocumentIn,
    DocumentOut,
    EmbedRequest,
    EmbedResponse,
    IngestReport,
    RetrieveRequest,
    RetrieveResponse,
)
from services.httpclient import ServiceClient

__all__ = ["HttpRetriever"]


class HttpRetriever(ServiceClient):
    """Talks to ``ragd serve retriever``. Adding documents is idempotent (content hashes), so it is retried."""

    def __init__(self, base_url: str, *, timeout_s: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, dependency="retriever", timeout_s=timeout_s, transport=transport)

    async def retrieve(self, request: RetrieveRequest) -> RetrieveResponse:
        data = await self.request("POST", "/internal/v1/retrieve", idempotent=True,
                                  json=request.model_dump(mode="json"))
        return RetrieveResponse.model_validate(data)

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        data = await self.request("POST", "/internal/v1/embed", idempotent=True, json=request.model_dump(mode="json"))
        return EmbedResponse.model_validate(data)

    async def create_collection(self, tenant: str, name: str, config: CollectionConfig) -> CollectionInfo:
        body = CreateCollectionRequest(tenant=tenant, name=name, config=config)
        data = await self.request("POST", "/internal/v1/collections", idempotent=False,
                                  json=body.model_dump(mode="json"))
        return CollectionInfo.model_validate(data)

    async def list_collections(self, tenant: str) -> list[CollectionInfo]:
        data = await self.request("GET", "/internal/v1/collections", params={"tenant": tenant})
        return [CollectionInfo.model_validate(item) for item in data]

    async def delete_collection(self, tenant: str, name: str) -> None:
        await self.request("DELETE", "/internal/v1/collections", idempotent=False,
                           params={"tenant": tenant, "name": name})

    async def add_documents(self, tenant: str, name: str, docs: Sequence[DocumentIn]) -> IngestReport:
        body = AddDocumentsRequest(tenant=tenant, collection=name, documents=list(docs))
        data = await self.request("POST", "/internal/v1/documents", idempotent=True,
                                  json=body.model_dump(mode="json"))
        return IngestReport.model_validate(data)

    async def get_document(self, tenant: str, name: str, doc_id: str) -> DocumentOut:
        data = await self.request("GET", "/internal/v1/documents",
                                  params={"tenant": tenant, "collection": name, "doc_id": doc_id})
        return DocumentOut.model_validate(data)

    async def delete_document(self, tenant: str, name: str, doc_id: str) -> IngestReport:
        data = await self.request("DELETE", "/internal/v1/documents", idempotent=False,
                                  params={"tenant": tenant, "collection": name, "doc_id": doc_id})
        return IngestReport.model_validate(data)
