"""Incremental BM25 through LocalRetriever (real Chroma, the packaged embedders): an ingest or a delete adds
a delta segment instead of rebuilding, scores as a rebuild from the stored terms would, survives a restart,
merges in the background without changing a score, and a failed ingest leaves everything as it was."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from retriever.service import LocalRetriever
from retriever.text import analyze
from services.contracts import DocumentIn
from services.epochs import MemoryEpochStore
from services.errors import DependencyUnavailableError, NotFoundError
from tests.retriever.conftest import load_queries

MakeRetriever = Callable[..., LocalRetriever]

NEW = [DocumentIn(id="en-comets", text="Comets grow bright tails of gas and dust when they pass near the Sun."),
       DocumentIn(id="ko-comet", text="혜성은 태양에 가까워지면 가스와 먼지로 된 꼬리가 길어진다.")]
QUERIES = [case["query"] for case in load_queries()] + ["comet tails near the Sun", "혜성 꼬리", "moon tides"]


async def _opened(make: MakeRetriever, **overrides: Any) -> LocalRetriever:
    retriever = make(**overrides)
    await retriever.warm_up()
    return retriever


async def _bm25(retriever: LocalRetriever) -> dict[str, list[tuple[str, float]]]:
    view = await retriever.view("acme", "kb")
    return {q: view.bm25().search(analyze(q), 20) for q in QUERIES}


async def _changed(retriever: LocalRetriever, corpus: list[DocumentIn]) -> None:
    edited = corpus[3].model_copy(update={"text": corpus[3].text + " Comets are icy bodies."})
    await retriever.add_documents("acme", "kb", [*NEW, edited])
    await retriever.delete_document("acme", "kb", str(corpus[5].id))


def test_an_ingest_extends_bm25_without_a_rebuild_and_scores_as_a_rebuild(
        ingested: MakeRetriever, corpus_docs: list[DocumentIn]) -> None:
    async def run() -> None:
        retriever = await _opened(ingested, bm25_merge_share=10.0)  # no merge: the segments stay visible
        base = (await retriever.view("acme", "kb")).bm25().segments[0]
        await _changed(retriever, corpus_docs)
        index = (await retriever.view("acme", "kb")).bm25()
        assert index.segments[0] is base and len(index.segments) == 2  # base + the ingest's delta (a delete adds none)
        incremental = await _bm25(retriever)
        view = await retriever.view("acme", "kb")
        assert view.chunks[incremental["comet tails near the Sun"][0][0]].doc_id == "en-comets"

        reopened = await _opened(ingested, bm25_merge_share=10.0)  # loads base + deltas from disk
        assert len((await reopened.view("acme", "kb")).bm25().segments) == 2
        assert await _bm25(reopened) == incremental

        shutil.rmtree(retriever.settings.data_dir / "bm25")
        rebuilt = await _opened(ingested)  # one index built from the terms stored in Chroma
        assert len((await rebuilt.view("acme", "kb")).bm25().segments) == 1
        assert await _bm25(rebuilt) == incremental

    asyncio.run(run())


def test_the_background_merge_keeps_every_score(ingested: MakeRetriever, corpus_docs: list[DocumentIn]) -> None:
    async def run() -> None:
        retriever = await _opened(ingested, bm25_merge_share=0.0)  # any delta triggers a merge
        (await retriever.view("acme", "kb")).bm25()
        await _changed(retriever, corpus_docs)
        index = (await retriever.view("acme", "kb")).bm25()
        deadline = time.monotonic() + 30
        while len(index.segments) > 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(index.segments) == 1
        for thread in threading.enumerate():  # the merge thread saves after merging: let it finish writing
            if thread.name == "ragd-bm25-merge":
                thread.join(timeout=30)
        merged = await _bm25(retriever)
        shutil.rmtree(retriever.settings.data_dir / "bm25")
        assert await _bm25(await _opened(ingested)) == merged

    asyncio.run(run())


def test_a_failed_ingest_leaves_the_collection_and_bm25_as_they_were(
        ingested: MakeRetriever, monkeypatch: pytest.MonkeyPatch) -> None:
    async def run() -> None:
        retriever = await _opened(ingested)
        before = await _bm25(retriever)
        docs_before = set((await retriever.view("acme", "kb")).docs)

        def refuse(*_: object) -> None:
            raise ConnectionError("injected fault: the store refuses the commit")

        with monkeypatch.context() as patch:
            patch.setattr(retriever.store, "commit_docs", refuse)
            with pytest.raises(DependencyUnavailableError):
                await retriever.add_documents("acme", "kb", NEW)
        assert set((await retriever.view("acme", "kb")).docs) == docs_before
        assert await _bm25(retriever) == before
        with pytest.raises(NotFoundError):
            await retriever.get_document("acme", "kb", "en-comets")

        other = LocalRetriever(retriever.settings, MemoryEpochStore())  # a restart sees the same
        await other.warm_up()
        assert await _bm25(other) == before
        report = await retriever.add_documents("acme", "kb", NEW)  # and the retry goes through
        assert report.added == ["en-comets", "ko-comet"]

    asyncio.run(run())
