"""REST for the corpus: collections, documents (JSON and file upload), search."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.components import Components
from gateway.deps import ComponentsDep, LimitedPrincipalDep, PrincipalDep, SettingsDep
from gateway.openai_schema import CollectionCreate, DocumentsCreate, SearchRequest
from gateway.uploads import read_documents
from services.contracts import CollectionInfo, DocumentOut, IngestReport, RetrieveRequest, ScoredChunk
from services.errors import CollectionNotFoundError, InvalidRequestError
from services.telemetry import stage

__all__ = ["router"]

router = APIRouter(prefix="/v1")


class CollectionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CollectionInfo]


class SearchResults(BaseModel):
    object: Literal["list"] = "list"
    data: list[ScoredChunk]
    degraded: list[str] = Field(default_factory=list)


async def _reclaim(components: Components, tenant: str, collection: str, report: IngestReport) -> None:
    """A corpus change made a new epoch: drop the cache entries of the older ones now, not at TTL."""
    reclaim = getattr(components.cache, "reclaim", None)
    if reclaim is not None and report.epoch:
        await reclaim(tenant, collection, report.epoch)


@router.post("/collections", status_code=201, response_model=CollectionInfo)
async def create_collection(body: CollectionCreate, principal: PrincipalDep, components: ComponentsDep) -> Any:
    return await components.corpus.create_collection(principal.tenant, body.name, body.config)


@router.get("/collections", response_model=CollectionList)
async def list_collections(principal: PrincipalDep, components: ComponentsDep) -> Any:
    return CollectionList(data=await components.corpus.list_collections(principal.tenant))


@router.delete("/collections/{name}", status_code=204)
async def delete_collection(name: str, principal: PrincipalDep, components: ComponentsDep) -> None:
    await components.corpus.delete_collection(principal.tenant, name)


@router.post("/collections/{name}/documents", response_model=IngestReport)
async def add_documents(name: str, body: DocumentsCreate, principal: PrincipalDep, components: ComponentsDep,
                        settings: SettingsDep) -> Any:
    if len(body.documents) > settings.max_documents_per_request:
        raise InvalidRequestError(f"At most {settings.max_documents_per_request} documents per request.",
                                  param="documents")
    with stage("ingest"):
        report = await components.corpus.add_documents(principal.tenant, name, body.documents)
    await _reclaim(components, principal.tenant, name, report)
    return report


@router.post("/collections/{name}/files", response_model=IngestReport)
async def upload_files(name: str, request: Request, principal: PrincipalDep, components: ComponentsDep,
                       settings: SettingsDep) -> Any:
    """Multipart upload of txt, md, html or pdf files (field ``files``, repeated; optional field
    ``metadata``: a JSON object given to every file). All or nothing: one refused file refuses the request."""
    collections = await components.corpus.list_collections(principal.tenant)
    if name not in {c.name for c in collections}:  # before reading (and parsing) what may be megabytes
        raise CollectionNotFoundError(name)
    documents = await read_documents(request, settings)
    with stage("ingest"):
        report = await components.corpus.add_documents(principal.tenant, name, documents)
    await _reclaim(components, principal.tenant, name, report)
    return report


@router.get("/collections/{name}/documents/{doc_id}", response_model=DocumentOut)
async def get_document(name: str, doc_id: str, principal: PrincipalDep, components: ComponentsDep) -> Any:
    return await components.corpus.get_document(principal.tenant, name, doc_id)


@router.delete("/collections/{name}/documents/{doc_id}", response_model=IngestReport)
async def delete_document(name: str, doc_id: str, principal: PrincipalDep, components: ComponentsDep) -> Any:
    report = await components.corpus.delete_document(principal.tenant, name, doc_id)
    await _reclaim(components, principal.tenant, name, report)
    return report


@router.post("/collections/{name}/search", response_model=SearchResults)
async def search(name: str, body: SearchRequest, principal: LimitedPrincipalDep, components: ComponentsDep) -> Any:
    with stage("retrieve"):
        result = await components.retriever.retrieve(RetrieveRequest(
            tenant=principal.tenant, collection=name, query=body.query, top_k=body.top_k, filter=body.filter))
    response = SearchResults(data=list(result.chunks), degraded=list(result.degraded))
    headers = {"x-ragd-degraded": ",".join(result.degraded)} if result.degraded else None
    return JSONResponse(response.model_dump(mode="json"), headers=headers)

