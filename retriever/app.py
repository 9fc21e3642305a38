"""The retriever as its own HTTP service (``ragd serve retriever``): every Corpus and Retriever method
under ``/internal/v1``, wire models from services/contracts.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from redis.asyncio import Redis

from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from retriever.wire import AddDocumentsRequest, CreateCollectionRequest
from services.app import install_common
from services.contracts import (
    CONTRACT_VERSION,
    CollectionInfo,
    DocumentOut,
    EmbedRequest,
    EmbedResponse,
    IngestReport,
    RetrieveRequest,
    RetrieveResponse,
)
from services.epochs import MemoryEpochStore, RedisEpochStore
from services.errors import InvalidRequestError
from services.protocols import EpochStore

__all__ = ["create_app"]


def _epoch_store(settings: RetrieverSettings) -> tuple[EpochStore, Redis | None]:
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url)
        return RedisEpochStore(redis), redis
    return MemoryEpochStore(), None


async def _check_contract(x_ragd_contract: Annotated[str | None, Header()] = None) -> None:
    if x_ragd_contract and x_ragd_contract.split(".")[0] != CONTRACT_VERSION.split(".")[0]:
        raise InvalidRequestError(f"Contract version {x_ragd_contract} is not supported (this is {CONTRACT_VERSION}).",
                                  code="contract_version")


def _service(request: Request) -> LocalRetriever:
    service: LocalRetriever = request.app.state.retriever
    return service


ServiceDep = Annotated[LocalRetriever, Depends(_service)]
Tenant = Annotated[str, Query(min_length=1)]


def create_app(settings: RetrieverSettings, *, retriever: LocalRetriever | None = None) -> FastAPI:
    """The retriever service. Pass ``retriever`` to serve an already built (and warmed) instance."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if retriever is not None:  # built, warmed and closed by the caller
            yield
            return
        epochs, redis = _epoch_store(settings)
        service = LocalRetriever(settings, epochs)
        await service.warm_up()
        app.state.retriever = service
        try:
            yield
        finally:
            await service.aclose()
            if redis is not None:
                await redis.aclose()

    app = FastAPI(title="ragd retriever", lifespan=lifespan, dependencies=[Depends(_check_contract)])
    if retriever is not None:
        app.state.retriever = retriever

    async def ready() -> dict[str, bool]:
        service: LocalRetriever | None = getattr(app.state, "retriever", None)
        return await service.ready() if service is not None else {"started": False}

    install_common(app, service="retriever", settings=settings, ready_check=ready)

    @app.post("/internal/v1/retrieve", response_model=RetrieveResponse)
    async def retrieve(body: RetrieveRequest, service: ServiceDep) -> RetrieveResponse:
        return await service.retrieve(body)

    @app.post("/internal/v1/embed", response_model=EmbedResponse)
    async def embed(body: EmbedRequest, service: ServiceDep) -> EmbedResponse:
        return await service.embed(body)

    @app.get("/internal/v1/collections", response_model=list[CollectionInfo])
    async def list_collections(tenant: Tenant, service: ServiceDep) -> list[CollectionInfo]:
        return await service.list_collections(tenant)

    @app.post("/internal/v1/collections", response_model=CollectionInfo, status_code=201)
    async def create_collection(body: CreateCollectionRequest, service: ServiceDep) -> CollectionInfo:
        return await service.create_collection(body.tenant, body.name, body.config)

    @app.delete("/internal/v1/collections", status_code=204)
    async def delete_collection(tenant: Tenant, name: Annotated[str, Query(min_length=1)],
                                service: ServiceDep) -> Response:
        await service.delete_collection(tenant, name)
        return Response(status_code=204)

    @app.post("/internal/v1/documents", response_model=IngestReport)
    async def add_documents(body: AddDocumentsRequest, service: ServiceDep) -> IngestReport:
        return await service.add_documents(body.tenant, body.collection, body.documents)

    @app.get("/internal/v1/documents", response_model=DocumentOut)
    async def get_document(tenant: Tenant, collection: Annotated[str, Query(min_length=1)],
                           doc_id: Annotated[str, Query(min_length=1)], service: ServiceDep) -> DocumentOut:
        return await service.get_document(tenant, collection, doc_id)

    @app.delete("/internal/v1/documents", response_model=IngestReport)
    async def delete_document(tenant: Tenant, collection: Annotated[str, Query(min_length=1)],
                              doc_id: Annotated[str, Query(min_length=1)], service: ServiceDep) -> IngestReport:
        return await service.delete_document(tenant, collection, doc_id)

    return app
