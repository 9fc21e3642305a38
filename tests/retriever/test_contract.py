"""One contract, two implementations: LocalRetriever in process and HttpRetriever over the retriever app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import numpy as np
import pytest

from retriever.app import create_app
from retriever.client import HttpRetriever
from retriever.service import LocalRetriever
from services.contracts import CollectionConfig, DocumentIn, EmbedRequest, RetrieveRequest
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


def test_ready(check: Callable[[Scenario], None]) -> None:
    async def scenario(impl: Both) -> None:
        assert isinstance(impl, Retriever)
        checks = await impl.ready()
        assert checks["models"] and checks["store"] and all(checks.values())

    check(scenario)


def test_retrieve(check: Callable[[Scenario], None]) -> None:
    async def scenario(impl: Both) -> None:
        assert isinstance(impl, Retriever)
        result = await impl.retrieve(RetrieveRequest(tenant="acme", collection="kb", query="한라산의 높이", top_k=2))
        assert result.chunks[0].doc_id == "ko-jeju" and len(result.chunks) == 2
        assert result.epoch and result.chunks[0].title == "제주도" and result.chunks[0].ranks
        assert {"retrieve_bm25", "retrieve_dense", "embed", "fuse"} <= set(result.timings_ms)

    check(scenario)


def test_embed_gives_the_vectors_the_index_searches_with(check: Callable[[Scenario], None]) -> None:
    passages = ["제주도\n한라산은 제주도 중앙에 있는 화산으로 높이는 1,947미터이다.",
                "김치\n김치는 배추와 무를 소금에 절인 뒤 양념하여 발효시킨 한국의 전통 음식이다.",
                "Photosynthesis\nPlants turn light, water and carbon dioxide into sugar and oxygen."]

    async def scenario(impl: Both) -> None:
        assert isinstance(impl, Retriever)
        found = await impl.embed(EmbedRequest(texts=passages, input_type="passage"))
        vectors = np.asarray(found.vectors)
        assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        assert found.model == "e5:multilingual-e5-small" and all(t > 5 for t in found.tokens)
        for question, best in (("한라산의 높이는 얼마인가요?", 0), ("How do plants make sugar from light?", 2)):
            query = np.asarray((await impl.embed(EmbedRequest(texts=[question]))).vectors[0])
            assert int(np.argmax(vectors @ query)) == best
        # the prefix matters: the same text as a query is another vector
        as_query = np.asarray((await impl.embed(EmbedRequest(texts=passages[:1]))).vectors[0])
        assert float(as_query @ vectors[0]) < 0.999

    check(scenario)


def test_embed_refuses_what_it_cannot_embed_whole(check: Callable[[Scenario], None]) -> None:
    long_text = "retrieval " * 400

    async def scenario(impl: Both) -> None:
        assert isinstance(impl, Retriever)
        with pytest.raises(InvalidRequestError) as refused:
            await impl.embed(EmbedRequest(texts=["short", long_text]))
        assert refused.value.code == "context_length_exceeded" and "Input 1" in refused.value.message
        cut = await impl.embed(EmbedRequest(texts=["short", long_text], truncate=True))
        assert cut.tokens[1] == 256 and cut.tokens[0] < 10 and len(cut.vectors) == 2
        with pytest.raises(InvalidRequestError) as wrong_size:
            await impl.embed(EmbedRequest(texts=["short"], dimensions=128))
        assert wrong_size.value.param == "dimensions"
        assert len((await impl.embed(EmbedRequest(texts=["short"], dimensions=384))).vectors[0]) == 384

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


FILTERED_DOCS = [
    DocumentIn(id="f-north-old", title="Vellum barges", text="Vellum river barges carry salt to the northern mills.",
               metadata={"region": "north", "year": 2021, "tags": ["river", "salt"]}),
    DocumentIn(id="f-south", title="Vellum barges south", text="Vellum river barges carry salt to the southern port.",
               metadata={"region": "south", "year": 2023, "tags": ["river"]}),
    DocumentIn(id="f-north-ko", title="벨룸 강 바지선", text="벨룸 강의 바지선은 북쪽 방앗간으로 소금을 나른다.",
               metadata={"region": "north", "year": 2024, "tags": ["강", "소금"]}),
]


def test_retrieve_with_a_metadata_filter(check: Callable[[Scenario], None]) -> None:
    async def scenario(impl: Both) -> None:
        assert isinstance(impl, Retriever)
        await impl.add_documents("acme", "kb", FILTERED_DOCS)

        async def ids(query: str, where: dict[str, object] | None) -> set[str]:
            result = await impl.retrieve(RetrieveRequest(tenant="acme", collection="kb", query=query, top_k=10,
                                                         filter=where))
            return {c.doc_id for c in result.chunks}

        assert {"f-north-old", "f-south"} <= await ids("Vellum river barges salt", None)
        assert await ids("Vellum river barges salt", {"region": "north"}) == {"f-north-old", "f-north-ko"}
        assert await ids("벨룸 강 바지선 소금", {"year": {"$gte": 2023}}) == {"f-south", "f-north-ko"}
        assert await ids("벨룸 강 바지선 소금", {"tags": "소금", "region": {"$ne": "south"}}) == {"f-north-ko"}
        assert await ids("Vellum river barges salt", {"region": "nowhere"}) == set()

    check(scenario)


def test_user_metadata_is_on_every_chunk_row_in_chroma(ingested: Callable[..., LocalRetriever]) -> None:
    async def go() -> None:
        local = ingested()
        await local.warm_up()
        await local.add_documents("acme", "kb", FILTERED_DOCS)
        chunks, _ = local.store._require("acme", "kb")
        rows = chunks.get(where={"meta.region": "north"}, include=["metadatas"])
        assert {m["doc_id"] for m in rows["metadatas"]} == {"f-north-old", "f-north-ko"}
        assert all(m["meta.year"] in (2021, 2024) for m in rows["metadatas"])
        tagged = chunks.get(where={"meta.tags": {"$contains": "소금"}}, include=["metadatas"])
        assert {m["doc_id"] for m in tagged["metadatas"]} == {"f-north-ko"}

    asyncio.run(go())
