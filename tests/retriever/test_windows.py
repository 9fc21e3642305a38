"""Dense windows: long chunks embedded as several vectors, scored by their best window; BM25 k1/b settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from lab.retriever.evaluation import COLLECTION, TENANT, load_beir, open_index
from retriever.bm25 import BM25Index
from retriever.chunking import chunk_text, dense_length
from retriever.ingest import dense_windows
from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from retriever.store import ChunkRecord, DocRecord
from retriever.view import CorpusView
from services.contracts import CollectionConfig, DocumentIn, RetrieveRequest
from services.epochs import partition_id

MakeRetriever = Callable[..., LocalRetriever]
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "beir_tiny"

LONG = DocumentIn(id="long", title="Assorted facts", text=(
    "Lighthouses guide ships along rocky coasts at night. "
    "Copper turns green as it weathers into a patina. "
    "Owls can rotate their heads by about two hundred and seventy degrees. "
    "The violin has four strings tuned in perfect fifths."))


def test_dense_length_counts_a_hangul_syllable_as_two_characters() -> None:
    assert dense_length("abc") == 3
    assert dense_length("한국어 abc") == 10
    assert dense_length("ㄱㄴ") == 2  # bare jamo are not syllables


def test_chunk_text_packs_by_the_given_measure() -> None:
    text = "가나다라. 마바사아. 자차카타."
    assert chunk_text(text, size=17, overlap=0) == [text]
    assert chunk_text(text, size=17, overlap=0, measure=dense_length) == ["가나다라.", "마바사아.", "자차카타."]


def test_dense_windows_split_only_long_chunks_and_keep_every_sentence() -> None:
    assert dense_windows(LONG.text, 0, 0) == [LONG.text]
    assert dense_windows(LONG.text, 1000, 100) == [LONG.text]
    windows = dense_windows(LONG.text, 130, 0)
    assert len(windows) == 2
    assert all(dense_length(w) <= 130 for w in windows)
    assert " ".join(windows) == LONG.text
    overlapping = dense_windows(LONG.text, 130, 60)
    assert len(overlapping) == 3
    assert overlapping[1].startswith("Copper") and overlapping[0].endswith("patina.")


def test_window_overlap_must_be_smaller_than_the_window() -> None:
    with pytest.raises(ValidationError):
        RetrieverSettings(dense_window=100, dense_window_overlap=100)
    assert RetrieverSettings(dense_window=0, dense_window_overlap=100).dense_window == 0


def test_a_chunk_is_found_by_its_best_window_and_windows_are_not_chunks(make_retriever: MakeRetriever) -> None:
    async def run() -> None:
        retriever = make_retriever(dense_window=110, dense_window_overlap=0)
        await retriever.warm_up()
        await retriever.create_collection("acme", "kb", CollectionConfig())
        others = [DocumentIn(id="ferry", text="Ferries cross the strait every hour in summer."),
                  DocumentIn(id="bread", text="Sourdough bread rises with wild yeast and lactic bacteria.")]
        report = await retriever.add_documents("acme", "kb", [LONG, *others])
        assert report.chunks_added == 3  # one chunk per document; the long one has 3 windows
        view = await retriever.view("acme", "kb")
        assert set(view.chunks) == {cid for d in view.docs.values() for cid in d.chunk_ids}
        info = {c.name: c for c in await retriever.list_collections("acme")}["kb"]
        assert info.chunks == 3
        rows = retriever.store.client.get_collection(f"ragd-{partition_id('acme', 'kb')}-c").count()
        assert rows == 5  # 3 chunk rows + 2 extra windows

        (long_chunk,) = view.docs["long"].chunk_ids
        vector = retriever.embedder.embed_queries(["How many strings does a violin have?"])[0]
        hits = retriever.store.query("acme", "kb", vector, 3)
        assert hits[0][0] == long_chunk
        assert len({cid for cid, _ in hits}) == len(hits) == 3  # windows map back to distinct chunks
        result = await retriever.retrieve(RetrieveRequest(tenant="acme", collection="kb",
                                                          query="violin strings tuned in fifths", top_k=1))
        assert result.chunks[0].doc_id == "long" and result.chunks[0].text.startswith("Lighthouses")

        await retriever.delete_document("acme", "kb", "long")
        assert retriever.store.client.get_collection(f"ragd-{partition_id('acme', 'kb')}-c").count() == 2

    asyncio.run(run())


def test_bm25_parameters_come_from_settings_and_key_the_saved_index(tmp_path: Path) -> None:
    doc = DocRecord(id="d", title="", content_hash="h", chunk_ids=("c",))
    chunk = ChunkRecord(id="c", doc_id="d", ordinal=0, text="owl", terms=("owl",))
    first = CorpusView.from_records("e1", {"d": doc}, [chunk], bm25_dir=tmp_path / "bm25", bm25_params=(0.9, 0.4))
    built = first.bm25()
    assert (built.k1, built.b) == (0.9, 0.4)
    other = CorpusView.from_records("e2", {"d": doc}, [chunk], bm25_dir=tmp_path / "bm25", bm25_params=(1.5, 0.75))
    assert BM25Index.load(tmp_path / "bm25", f"{other.fingerprint}:k1=1.5:b=0.75") is None
    rebuilt = other.bm25()
    assert (rebuilt.k1, rebuilt.b) == (1.5, 0.75)


def test_eval_index_with_windows_ranks_documents_once(tmp_path: Path) -> None:
    dataset = load_beir(FIXTURE, "test")
    settings = RetrieverSettings(data_dir=tmp_path / "unused", redis_url=None, dense_window=60,
                                 dense_window_overlap=0)

    async def run() -> None:
        retriever = await open_index(dataset, settings, tmp_path / "cache", progress=False)
        try:
            query = next(iter(dataset.queries.values()))
            result = await retriever.retrieve(RetrieveRequest(tenant=TENANT, collection=COLLECTION,
                                                              query=query, top_k=20))
            ids = [c.chunk_id for c in result.chunks]
            assert len(ids) == len(set(ids)) and all("#" not in cid for cid in ids)
        finally:
            await retriever.aclose()

    asyncio.run(run())


def test_terms_survive_the_store_round_trip(make_retriever: MakeRetriever) -> None:
    doc = DocumentIn(id="ko-ford", title="제럴드 포드", text="제럴드 포드 대통령은 연합군 최고 사령부를 방문했다.")

    async def run() -> None:
        writer = make_retriever()
        await writer.warm_up()
        await writer.create_collection("acme", "kb", CollectionConfig())
        await writer.add_documents("acme", "kb", [doc])
        written = {c.id: c.terms for c in (await writer.view("acme", "kb")).chunks.values()}
        reader = make_retriever()  # a fresh replica: its view is loaded from Chroma
        await reader.warm_up()
        loaded = {c.id: c.terms for c in (await reader.view("acme", "kb")).chunks.values()}
        assert loaded == written and "포드" in next(iter(loaded.values()))

    asyncio.run(run())
