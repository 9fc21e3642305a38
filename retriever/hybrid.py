"""Hybrid search over one collection view: BM25 || dense (|| English dense, for English queries)
-> fusion -> optional cross-encoder rerank.

Each side may fail alone: the others serve and ``degraded`` names the failed side ("bm25", "dense",
"english", "rerank"); the failure is counted in ``ragd_degradations``. BM25 and dense both failing is a 503.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from embeddings.protocol import embeds_as
from retriever.embedders import Embedder
from retriever.fusion import Ranked, reciprocal_rank_fusion, weighted_fusion
from retriever.ingest import passage_text
from retriever.rerank import CrossEncoderReranker, rerank_head
from retriever.settings import RetrieverSettings
from retriever.store import ChromaStore
from retriever.text import analyze, content_terms, detect_language
from retriever.view import CorpusView, FilterScope
from services.contracts import RetrieveRequest, RetrieveResponse, ScoredChunk
from services.errors import DependencyUnavailableError
from services.telemetry import DEGRADATIONS, stage

__all__ = ["HybridSearch", "fuse"]

_log = logging.getLogger("ragd.retriever")
T = TypeVar("T")


class DenseIndexMismatchError(RuntimeError):
    """The collection's vectors were made by another embedder than the one loaded now."""


class HybridSearch:
    def __init__(self, settings: RetrieverSettings, store: ChromaStore, embedder: Embedder,
                 reranker: CrossEncoderReranker | None, *, english: Embedder | None = None) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.reranker = reranker
        self.english = english

    async def run(self, request: RetrieveRequest, view: CorpusView) -> RetrieveResponse:
        timings: dict[str, float] = {}
        depth = max(self.settings.candidates, request.top_k)
        scope = view.scope(request.filter)
        if scope is not None and not scope.docs:  # nothing matches the filter: no side has anything to find
            return RetrieveResponse(chunks=[], epoch=view.epoch, timings_ms=timings)
        bm25_task = _timed("retrieve_bm25", timings,
                           lambda: asyncio.to_thread(self._bm25, view, request, depth, scope))
        dense_task = _timed("retrieve_dense", timings, lambda: self._dense(view, request, depth, timings, scope))
        tasks: dict[str, Awaitable[Ranked | _Bm25Side]] = {"bm25": bm25_task, "dense": dense_task}
        language = detect_language(request.query)
        if self.english is not None and language == "en":
            english = self.english
            tasks["english"] = _timed("retrieve_english", timings,
                                      lambda: self._english(english, view, request, depth, timings, scope))
        results = await asyncio.gather(*tasks.values(), return_exceptions=True)
        rankings: dict[str, Ranked] = {}
        degraded: list[str] = []
        terms: list[str] = []  # the query's BM25 terms, analyzed once by the BM25 side
        for side, result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                _fail(side, result, degraded)
            elif isinstance(result, _Bm25Side):
                terms, rankings[side] = result.terms, result.ranked
            elif side != "english" or result:  # a collection without an English side: two lists
                rankings[side] = result
        if "bm25" not in rankings and "dense" not in rankings:
            raise DependencyUnavailableError("Retrieval failed on both the BM25 and the dense side.",
                                             dependency="retriever")
        started = time.perf_counter()
        with stage("fuse"):
            fused = self._fuse(rankings)
        timings["fuse"] = round((time.perf_counter() - started) * 1000, 3)
        ordered = await self._rerank(request, language, view, fused, degraded, timings)
        chunks = [self._scored(view, cid, score, rankings) for cid, score in ordered[:request.top_k]]
        if "bm25" in rankings and chunks:
            chunks = await asyncio.to_thread(_with_coverage, view, terms, chunks)
        return RetrieveResponse(chunks=chunks, epoch=view.epoch, degraded=degraded, timings_ms=timings)

    def _bm25(self, view: CorpusView, request: RetrieveRequest, depth: int,
              scope: FilterScope | None) -> _Bm25Side:
        terms = analyze(request.query)
        return _Bm25Side(terms, view.bm25().search(terms, depth, allowed=scope.chunks if scope else None))

    async def _dense(self, view: CorpusView, request: RetrieveRequest, depth: int, timings: dict[str, float],
                     scope: FilterScope | None) -> list[tuple[str, float]]:
        if view.embedder and not embeds_as(self.embedder, view.embedder):
            raise DenseIndexMismatchError(f"collection embedded with {view.embedder}, not {self.embedder.name}")
        where = scope.where if scope else None
        return await self._nearest(
            self.embedder, "embed", view, request, depth, timings, scope,
            lambda vector, n: self.store.query(request.tenant, request.collection, vector, n, where=where))

    async def _english(self, english: Embedder, view: CorpusView, request: RetrieveRequest, depth: int,
                       timings: dict[str, float], scope: FilterScope | None) -> list[tuple[str, float]]:
        where = scope.where if scope else None
        return await self._nearest(
            english, "embed_english", view, request, depth, timings, scope,
            lambda vector, n: self.store.query_english(request.tenant, request.collection, vector, n, english.name,
                                                       where=where))

    async def _nearest(self, embedder: Embedder, stage_name: str, view: CorpusView, request: RetrieveRequest,
                       depth: int, timings: dict[str, float], scope: FilterScope | None,
                       search: Callable[[Any, int], list[tuple[str, float]]]) -> list[tuple[str, float]]:
        """The query embedded by ``embedder`` (timed as ``stage_name``), then ``search(vector, n)`` in a
        thread, keeping only the view's chunks (and, under a filter, only the allowed ones)."""
        visible = scope.chunks if scope is not None else view.chunks
        if not visible:
            return []
        started = time.perf_counter()
        with stage(stage_name):
            vector = (await asyncio.to_thread(embedder.embed_queries, [request.query]))[0]
        timings[stage_name] = round((time.perf_counter() - started) * 1000, 3)
        # Chroma may still hold chunks of uncommitted or just-deleted documents: ask for a few more.
        n = min(len(visible) + 16, depth + 16)
        hits = await asyncio.to_thread(search, vector, n)
        return [(cid, score) for cid, score in hits if cid in visible][:depth]

    def _fuse(self, rankings: dict[str, Ranked]) -> list[tuple[str, float]]:
        return fuse(rankings, self.settings)

    async def _rerank(self, request: RetrieveRequest, language: str, view: CorpusView,
                      fused: list[tuple[str, float]], degraded: list[str],
                      timings: dict[str, float]) -> list[tuple[str, float]]:
        if self.reranker is None or not fused or not self.reranker.serves(language):
            return fused
        head = fused[: self.settings.rerank_top_n]
        passages = [passage_text(view.docs[view.chunks[cid].doc_id].title, view.chunks[cid].text)
                    for cid, _ in head]
        reranker = self.reranker
        try:
            scores = await _timed("rerank", timings,
                                  lambda: asyncio.to_thread(reranker.scores, request.query, passages))
        except Exception as exc:
            _fail("rerank", exc, degraded)
            return fused
        return rerank_head(head, scores, reranker.blend) + fused[len(head):]

    def _scored(self, view: CorpusView, cid: str, score: float, rankings: dict[str, Ranked]) -> ScoredChunk:
        chunk = view.chunks[cid]
        doc = view.docs[chunk.doc_id]
        ranks: dict[str, int] = {}
        raw: dict[str, float] = {}
        for side, ranked in rankings.items():
            for i, (c, side_score) in enumerate(ranked, 1):
                if c == cid:
                    ranks[side], raw[side] = i, round(float(side_score), 6)
                    break
        return ScoredChunk(chunk_id=cid, doc_id=chunk.doc_id, title=doc.title, text=chunk.text, score=score,
                           ranks=ranks, side_scores=raw, metadata=doc.metadata)


@dataclass(frozen=True)
class _Bm25Side:
    """The BM25 side's answer: the query's terms (coverage reads them again) and their ranking."""

    terms: list[str]
    ranked: list[tuple[str, float]]


def _with_coverage(view: CorpusView, terms: list[str], chunks: list[ScoredChunk]) -> list[ScoredChunk]:
    """``chunks`` with side score ``bm25_coverage``: the IDF-weighted share of the question's content terms
    (``terms`` less question and request words) each holds (IDF over the whole collection; what abstention
    reads to tell the passage asked about from its siblings)."""
    cover = view.bm25().coverage(content_terms(terms), [c.chunk_id for c in chunks])
    return [c.model_copy(update={"side_scores": {**c.side_scores, "bm25_coverage": round(cover[c.chunk_id], 6)}})
            for c in chunks]


def fuse(rankings: Mapping[str, Ranked], settings: RetrieverSettings) -> list[tuple[str, float]]:
    """The configured fusion of the side lists present ("bm25", "dense", "english")."""
    if settings.fusion == "weighted":
        weights = {"bm25": settings.weight_bm25, "dense": settings.weight_dense, "english": settings.weight_english}
        return weighted_fusion(rankings, weights, method=settings.weighted_norm)
    return reciprocal_rank_fusion(rankings, k=settings.rrf_k)


async def _timed(name: str, timings: dict[str, float], call: Callable[[], Awaitable[T]]) -> T:
    started = time.perf_counter()
    try:
        with stage(name):
            return await call()
    finally:
        timings[name] = round((time.perf_counter() - started) * 1000, 3)


def _fail(side: str, exc: Exception, degraded: list[str]) -> None:
    degraded.append(side)
    DEGRADATIONS.labels(side).inc()
    _log.warning("retrieval side failed", extra={"ragd": {"side": side, "error": type(exc).__name__}})
