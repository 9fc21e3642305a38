"""One contract, two implementations: LocalRetriever in process and HttpRetriever over the retriever app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from retriever.app import create_app
from retriever.client import HttpRetriever
from retriever.service import LocalRetriever
from services.contracts import CollectionConfig, DocumentIn, RetrieveRequest
from services.errors import ConflictError, InvalidRequestError, NotFoundError, PayloadTooLargeError
from services.protocols import Corpus, Retriever

Both = Corpus
Scenario = Callable[[Both], Awaitable[None]]


@asynccontextmanager
async def _implementation(kind: str, local: LocalRetriever) -> AsyncIterator[Both]:
    await local.warm_up()
    if kind == "local":
        yield local
        return
    app = create_app(local.settings, retriever=local)
    client = HttpRetriever("http://retriever", transport=httpx.ASGITransport(app=app))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(params=["local", "http"])
def check(request: pytest.FixtureRequest, ingested: Callable[..., LocalRetriever]) -> Callable[[Scenario], None]:
    def run(scenario: Scenario) -> None:
        async def go() -> None:
            async with _implementation(request.param, ingested(max_documents_per_request=30)) as impl:
                assert isinstance(impl, Corpus) and isinstance(impl, Retriever)
                await scenario(impl)

        asyncio.run(go())

    return run


def test_retrieve(check: Callable[[Scenario], None]) -> None:
    async def scenario(impl: Both) -> None:
        assert isinstance(impl, Retriever)
        result = await impl.retrieve(RetrieveRequest(tenant="acme", collection="kb", query="한라산의 높이", top_k=2))
        assert result.chunks[0].doc_id == "ko-jeju" and len(result.chunks) == 2
        assert result.epoch and result.chunks[0].title == "제주도" and result.chunks[0].ranks
        assert {"retrieve_bm25", "retrieve_dense", "embed", "fuse"} <= set(result.timings_ms)

    check(scenario)


def test_collections(check: Callable[[Scenario], None]) -> None:
    async def scenario(impl: Both) -> None:
        created = await impl.create_collection("acme", "notes/2024 ü", CollectionConfig(hnsw_m=12))
        assert created.name == "notes/2024 ü" and created.config.hnsw_m == 12 and created.epoch
        with pytest.raises(ConflictError):
            await impl.create_collection("acme", "notes/2024 ü", CollectionConfig())
        names = [c.name for c in await impl.list_collections("acme")]
        assert names == ["kb", "notes/2024 ü"]
        kb = {c.name: c for c in await impl.list_collections("acme")}["kb"]
        assert kb.documents == 24 and kb.chunks == 24
        await impl.delete_collection("acme", "notes/2024 ü")
        assert [c.name for c in await impl.list_collections("acme")] == ["kb"]
        with pytest.raises(NotFoundError):
            await impl.delete_collection("acme", "notes/2024 ü")

    check(scenario)


def test_documents(check: Callable[[Scenario], None]) -> None:
    async def scenario(impl: Both) -> None:
        doc = DocumentIn(id="dir/odd id?&#.md", title="Ferries", text="The ferry leaves at noon.",
                         metadata={"source": "ferry.md", "page": 3, "draft": False})
        report = await impl.add_documents("acme", "kb", [doc])
        assert report.added == [doc.id] and report.chunks_added == 1 and report.epoch
        again = await impl.add_documents("acme", "kb", [doc])
        assert again.unchanged == [doc.id] and again.epoch == report.epoch
        got = await impl.get_document("acme", "kb", str(doc.id))
        assert (got.title, got.text, got.metadata) == (doc.title, doc.text, doc.metadata)
        assert len(got.chunk_ids) == 1 and len(got.content_hash) == 64
        deleted = await impl.delete_document("acme", "kb", str(doc.id))
        assert deleted.deleted == [doc.id] and deleted.epoch not in ("", report.epoch)
        with pytest.raises(NotFoundError):
            await impl.get_document("acme", "kb", str(doc.id))

    check(scenario)


def test_errors_cross_the_wire_with_their_class(check: Callable[[Scenario], None]) -> None:
    async def scenario(impl: Both) -> None:
        assert isinstance(impl, Retriever)
        with pytest.raises(NotFoundError):
            await impl.retrieve(RetrieveRequest(tenant="other", collection="kb", query="x"))
        with pytest.raises(NotFoundError):
            await impl.get_document("other", "kb", "ko-jeju")
        with pytest.raises(NotFoundError):
            await impl.add_documents("acme", "nope", [DocumentIn(text="x")])
        with pytest.raises(InvalidRequestError):
            await impl.add_documents("acme", "kb", [DocumentIn(id="e", text=" ")])
        with pytest.raises(PayloadTooLargeError):
            await impl.add_documents("acme", "kb", [DocumentIn(text=f"doc {i}") for i in range(31)])

    check(scenario)
