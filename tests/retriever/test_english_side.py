"""The English side: English chunks also embedded by an English-only model, fused for English queries only."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from retriever.embedders import PACKAGED_ENGLISH
from retriever.hybrid import fuse
from retriever.ingest import english_passages
from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from retriever.store import ChunkRecord, EnglishIndexMismatchError, _english_name
from services.contracts import CollectionConfig, DocumentIn, RetrieveRequest

MakeRetriever = Callable[..., LocalRetriever]

DOCS = [
    DocumentIn(id="en-bees", title="Honeybees", text="Honeybees dance to tell their sisters where flowers are."),
    DocumentIn(id="en-tides", title="Tides", text="Tides come from the pull of the moon and the sun on the oceans."),
    DocumentIn(id="ko-hangul", title="한글", text="한글은 세종대왕이 1443년에 만들고 1446년에 반포한 문자이다."),
]


def _english_ids(retriever: LocalRetriever, tenant: str, name: str) -> set[str]:
    english = retriever.store.client.get_collection(_english_name(tenant, name), embedding_function=None)
    return set(english.get(include=[])["ids"])


def test_only_english_chunks_go_to_the_english_side() -> None:
    chunks = [ChunkRecord(id=f"c{i}", doc_id=d.id, ordinal=0, text=d.text, terms=()) for i, d in enumerate(DOCS)]
    picked, texts = english_passages([d.title for d in DOCS], chunks)
    assert [c.doc_id for c in picked] == ["en-bees", "en-tides"]
    assert texts[0] == "Honeybees\nHoneybees dance to tell their sisters where flowers are."


def test_weighted_fusion_of_three_lists_uses_the_english_weight() -> None:
    rankings = {"bm25": [("a", 3.0), ("b", 2.0), ("c", 1.0)],
                "dense": [("a", 0.9), ("b", 0.8), ("c", 0.7)],
                "english": [("c", 0.9), ("b", 0.5), ("a", 0.1)]}
    light = RetrieverSettings(weight_bm25=0.4, weight_dense=0.4, weight_english=0.2)
    heavy = RetrieverSettings(weight_bm25=0.1, weight_dense=0.1, weight_english=0.8)
    assert next(cid for cid, _ in fuse(rankings, light)) == "a"
    assert next(cid for cid, _ in fuse(rankings, heavy)) == "c"
    # without an English list, weights 0.4 / 0.4 order exactly as 0.5 / 0.5 (the old default)
    two = {"bm25": [("a", 3.0), ("b", 2.5), ("c", 1.0)], "dense": [("c", 0.9), ("b", 0.85), ("a", 0.7)]}
    old = RetrieverSettings(weight_bm25=0.5, weight_dense=0.5, weight_english=0.0)
    assert [c for c, _ in fuse(two, light)] == [c for c, _ in fuse(two, old)]


def test_english_queries_fuse_three_lists_korean_queries_two(make_retriever: MakeRetriever) -> None:
    async def run() -> None:
        retriever = make_retriever()
        await retriever.warm_up()
        await retriever.create_collection("acme", "kb", CollectionConfig())
        await retriever.add_documents("acme", "kb", DOCS)
        view = await retriever.view("acme", "kb")
        en_chunks = {cid for cid, c in view.chunks.items() if c.doc_id.startswith("en-")}
        assert _english_ids(retriever, "acme", "kb") == en_chunks

        english = await retriever.retrieve(RetrieveRequest(tenant="acme", collection="kb",
                                                           query="why do bees dance", top_k=3))
        assert english.chunks[0].doc_id == "en-bees"
        assert set(english.chunks[0].ranks) == {"bm25", "dense", "english"}
        assert "retrieve_english" in english.timings_ms and not english.degraded

        korean = await retriever.retrieve(RetrieveRequest(tenant="acme", collection="kb",
                                                          query="한글은 누가 만들었나요?", top_k=3))
        assert korean.chunks[0].doc_id == "ko-hangul"
        assert "retrieve_english" not in korean.timings_ms
        assert all("english" not in c.ranks for c in korean.chunks)

        await retriever.delete_document("acme", "kb", "en-bees")
        after = await retriever.view("acme", "kb")
        assert _english_ids(retriever, "acme", "kb") == {cid for cid, c in after.chunks.items()
                                                         if c.doc_id.startswith("en-")}
        await retriever.delete_collection("acme", "kb")
        names = {c.name for c in retriever.store.client.list_collections()}
        assert _english_name("acme", "kb") not in names
        await retriever.aclose()

    asyncio.run(run())


def test_english_side_off_and_an_index_made_by_another_english_model(make_retriever: MakeRetriever) -> None:
    async def run() -> None:
        off = make_retriever(english_dense=False)
        await off.warm_up()
        await off.create_collection("acme", "kb", CollectionConfig())
        await off.add_documents("acme", "kb", DOCS[:2])
        names = {c.name for c in off.store.client.list_collections()}
        assert _english_name("acme", "kb") not in names
        response = await off.retrieve(RetrieveRequest(tenant="acme", collection="kb", query="why do bees dance"))
        assert "english" not in response.chunks[0].ranks
        await off.aclose()

        # the same collection served with the English side on: no English side yet, two lists, not degraded
        on = make_retriever()
        await on.warm_up()
        response = await on.retrieve(RetrieveRequest(tenant="acme", collection="kb", query="why do bees dance"))
        assert response.chunks[0].doc_id == "en-bees" and not response.degraded
        assert "english" not in response.chunks[0].ranks
        # a later write gives it one for the new documents
        moon = DocumentIn(id="en-moon", title="Moon", text="The moon has no air.")
        await on.add_documents("acme", "kb", [*DOCS[2:], moon])
        view = await on.view("acme", "kb")
        assert _english_ids(on, "acme", "kb") == {cid for cid, c in view.chunks.items() if c.doc_id == "en-moon"}
        assert on.english is not None and on.english.name == PACKAGED_ENGLISH
        vector = on.english.embed_queries(["moon"])[0]
        assert on.store.query_english("acme", "kb", vector, 3, PACKAGED_ENGLISH)[0][0] in view.chunks
        with pytest.raises(EnglishIndexMismatchError):
            on.store.query_english("acme", "kb", vector, 3, "some-other-model")
        await on.aclose()

    asyncio.run(run())
