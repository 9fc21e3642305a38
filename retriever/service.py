"""LocalRetriever: the in-process Corpus + Retriever over Chroma, BM25 and an embedder.

Write path, per batch of documents (durable against ``kill -9`` at any point):
  prepare (chunk, analyze, embed) -> write chunks to Chroma -> commit document records -> delete the
  chunks that updated/deleted documents no longer list -> bump the epoch -> swap in the new view.
A document is visible only once its record is committed; chunks left by an interrupted ingest are never
listed by a record, so they stay invisible and are deleted on a later reload (after ``orphan_grace_s``).

Epochs: every change that alters a collection bumps its epoch; a no-op ingest (every document unchanged)
does not, so answers cached under the current epoch stay valid.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from retriever.embedders import Embedder, TokenCounting, build_embedder, build_english_embedder
from retriever.hybrid import HybridSearch
from retriever.ingest import (
    Prepared,
    document_hash,
    document_id,
    embed_batched,
    embed_passages,
    english_passages,
    prepare,
    validate,
)
from retriever.rerank import CrossEncoderReranker
from retriever.settings import RetrieverSettings
from retriever.store import ChromaStore, DocRecord
from retriever.text import kiwi
from retriever.view import CorpusView
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
from services.epochs import partition_id
from services.errors import DependencyUnavailableError, InvalidRequestError, NotFoundError, RagdError
from services.protocols import EpochStore
from services.telemetry import stage

__all__ = ["LocalRetriever"]

_log = logging.getLogger("ragd.retriever")
T = TypeVar("T")


async def _stored(call: Callable[..., T], *args: Any) -> T:
    """Run a blocking store call in a thread; a store failure that is not ours becomes a 503."""
    try:
        return await asyncio.to_thread(call, *args)
    except RagdError:
        raise
    except Exception as exc:
        _log.error("vector store call failed", extra={"ragd": {"call": getattr(call, "__name__", ""),
                                                                "error": type(exc).__name__}})
        raise DependencyUnavailableError("The vector store is unavailable.", dependency="chroma") from exc


class LocalRetriever:
    """Implements ``services.protocols.Corpus`` and ``services.protocols.Retriever`` in process."""

    def __init__(self, settings: RetrieverSettings, epochs: EpochStore) -> None:
        self.settings = settings
        self.epochs = epochs
        self.store = ChromaStore(settings)
        self.embedder: Embedder = build_embedder(settings)
        self.english: Embedder | None = build_english_embedder(settings)
        self.reranker = (CrossEncoderReranker(settings.reranker_model, models_dir=settings.e5_onnx.models_dir,
                                              precision=settings.rerank_precision, threads=settings.rerank_threads,
                                              max_length=settings.rerank_max_length, blend=settings.rerank_blend)
                         if settings.reranker_model else None)
        self._views: dict[str, CorpusView] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._warm = False
        self.search = HybridSearch(settings, self.store, self.embedder, self.reranker, english=self.english)

    # ------------------------------------------------------------------ lifecycle

    async def warm_up(self) -> None:
        """Open the store and load the models (seconds); call once before serving."""
        try:
            await asyncio.to_thread(self.store.open)
        except Exception as exc:  # not ready until the store answers; calls retry the connection
            _log.error("vector store unreachable at start", extra={"ragd": {"error": type(exc).__name__}})
        await asyncio.to_thread(lambda: self.embedder.dim)
        if self.english is not None:
            english = self.english
            await asyncio.to_thread(lambda: english.dim)
        await asyncio.to_thread(kiwi)
        if self.reranker is not None:
            try:
                await asyncio.to_thread(self.reranker.load)
            except Exception as exc:  # optional stage: serve fused order, announced as degraded "rerank"
                _log.error("reranker could not be loaded", extra={"ragd": {"error": type(exc).__name__}})
        self._warm = True

    async def ready(self) -> dict[str, bool]:
        """Models loaded and store reachable. A reranker that failed to load degrades, it does not unready."""
        return {"models": self._warm, "store": self._warm and await asyncio.to_thread(self.store.heartbeat)}

    async def aclose(self) -> None:
        self._views.clear()

    # ------------------------------------------------------------------ views

    def _lock(self, tenant: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault(partition_id(tenant, name), asyncio.Lock())

    async def view(self, tenant: str, name: str) -> CorpusView:
        """The view at the collection's current epoch, reloaded from Chroma when another replica changed it."""
        pid = partition_id(tenant, name)
        epoch = await self.epochs.get(tenant, name)
        current = self._views.get(pid)
        if current is not None and current.epoch == epoch:
            return current
        async with self._lock(tenant, name):
            return await self._view_locked(tenant, name)

    def _bm25_dir(self, tenant: str, name: str) -> Path:
        return self.settings.data_dir / "bm25" / partition_id(tenant, name)

    def _load_view(self, tenant: str, name: str, epoch: str) -> CorpusView:
        described = self.store.describe(tenant, name)
        docs = self.store.load_docs(tenant, name)
        chunks = self.store.load_chunks(tenant, name)
        view = CorpusView.from_records(epoch, docs, chunks, embedder=described.embedder,
                                       bm25_dir=self._bm25_dir(tenant, name),
                                       bm25_params=(self.settings.bm25_k1, self.settings.bm25_b),
                                       bm25_merge=(self.settings.bm25_max_segments, self.settings.bm25_merge_share))
        cutoff = time.time() - self.settings.orphan_grace_s
        orphans = [c.id for c in chunks if c.id not in view.chunks and c.written_at < cutoff]
        if orphans:
            _log.info("deleting orphan chunks", extra={"ragd": {"orphans": len(orphans)}})
            self.store.delete_chunks(tenant, name, orphans)
        return view

    # ------------------------------------------------------------------ Corpus

    async def create_collection(self, tenant: str, name: str, config: CollectionConfig) -> CollectionInfo:
        await _stored(self.store.create, tenant, name, config, self.embedder.name)
        epoch = await self.epochs.bump(tenant, name)
        return CollectionInfo(name=name, epoch=epoch, config=config)

    async def list_collections(self, tenant: str) -> list[CollectionInfo]:
        stored = await _stored(self.store.list_collections, tenant)
        return [CollectionInfo(name=s.name, documents=s.documents, chunks=s.chunks, config=s.config,
                               epoch=await self.epochs.get(tenant, s.name)) for s in stored]

    async def delete_collection(self, tenant: str, name: str) -> None:
        async with self._lock(tenant, name):
            await _stored(self.store.delete, tenant, name)
            self._views.pop(partition_id(tenant, name), None)
            await asyncio.to_thread(shutil.rmtree, self._bm25_dir(tenant, name), True)
            await self.epochs.bump(tenant, name)

    async def get_document(self, tenant: str, name: str, doc_id: str) -> DocumentOut:
        found = await _stored(self.store.get_document, tenant, name, doc_id)
        if found is None:
            raise NotFoundError(f"Document '{doc_id}' not found.", param="doc_id")
        record, text = found
        return DocumentOut(id=record.id, title=record.title, text=text, metadata=record.metadata,
                           content_hash=record.content_hash, chunk_ids=list(record.chunk_ids))

    async def add_documents(self, tenant: str, name: str, docs: Sequence[DocumentIn]) -> IngestReport:
        validate(docs, self.settings)
        with stage("ingest"):
            async with self._lock(tenant, name):
                return await self._add(tenant, name, docs)

    async def _add(self, tenant: str, name: str, docs: Sequence[DocumentIn]) -> IngestReport:
        view = await self._view_locked(tenant, name)
        report = IngestReport(collection=name)
        changed = [d for d in docs if (old := view.docs.get(document_id(d))) is None
                   or old.content_hash != document_hash(d)]
        changed_ids = {document_id(d) for d in changed}
        unchanged = [document_id(d) for d in docs if document_id(d) not in changed_ids]
        if not changed:
            return report.model_copy(update={"unchanged": unchanged, "epoch": view.epoch})
        prepared = await asyncio.to_thread(lambda: [prepare(d, self.settings) for d in changed])
        # bump before the change as well as after: if the epoch store is down the change is refused
        # here, never applied under an unchanged epoch (a cached answer would outlive it)
        await self.epochs.bump(tenant, name)
        await self._write(tenant, name, prepared)
        stale = [cid for p in prepared if (old := view.docs.get(p.record.id))
                 for cid in old.chunk_ids if cid not in set(p.record.chunk_ids)]
        await _stored(self.store.delete_chunks, tenant, name, stale)
        epoch = await self.epochs.bump(tenant, name)
        self._views[partition_id(tenant, name)] = await asyncio.to_thread(
            view.changed, epoch, {p.record.id: (p.record, p.chunks) for p in prepared})
        new_chunks = sum(1 for p in prepared for c in p.chunks if c.id not in view.chunks)
        _log.info("ingested", extra={"ragd": {"documents": len(docs), "changed": len(prepared),
                                              "chunks_added": new_chunks, "chunks_removed": len(stale)}})
        return report.model_copy(update={
            "added": [p.record.id for p in prepared if p.record.id not in view.docs],
            "updated": [p.record.id for p in prepared if p.record.id in view.docs],
            "unchanged": unchanged, "chunks_added": new_chunks, "chunks_removed": len(stale), "epoch": epoch})

    async def _write(self, tenant: str, name: str, prepared: list[Prepared]) -> None:
        chunks = [c for p in prepared for c in p.chunks]
        titles = [p.record.title for p in prepared for _ in p.chunks]
        with stage("embed"):
            vectors = await asyncio.to_thread(
                lambda: embed_passages(self.embedder, titles, chunks, self.settings.embed_batch_size,
                                       window=self.settings.dense_window,
                                       overlap=self.settings.dense_window_overlap))
        metadata = {p.record.id: p.record.metadata for p in prepared}
        await _stored(self.store.write_chunks, tenant, name, chunks, vectors, metadata)
        if self.english is not None:
            english = self.english
            en_chunks, en_texts = english_passages(titles, chunks)
            with stage("embed"):
                en_vectors = await asyncio.to_thread(embed_batched, english, en_texts,
                                                     self.settings.embed_batch_size)
            await _stored(self.store.write_english, tenant, name, en_chunks, en_vectors, english.name, metadata)
        records: list[tuple[DocRecord, str]] = [(p.record, p.text) for p in prepared]
        await _stored(self.store.commit_docs, tenant, name, records)

    async def delete_document(self, tenant: str, name: str, doc_id: str) -> IngestReport:
        async with self._lock(tenant, name):
            view = await self._view_locked(tenant, name)
            record = view.docs.get(doc_id)
            if record is None:
                raise NotFoundError(f"Document '{doc_id}' not found.", param="doc_id")
            await self.epochs.bump(tenant, name)  # refused here when the epoch store is down
            await _stored(self.store.delete_docs, tenant, name, [doc_id])
            await _stored(self.store.delete_chunks, tenant, name, list(record.chunk_ids))
            epoch = await self.epochs.bump(tenant, name)
            self._views[partition_id(tenant, name)] = await asyncio.to_thread(view.changed, epoch, {}, [doc_id])
            return IngestReport(collection=name, deleted=[doc_id], chunks_removed=len(record.chunk_ids),
                                epoch=epoch)

    async def _view_locked(self, tenant: str, name: str) -> CorpusView:
        """Like :meth:`view`, for callers that already hold the collection's lock."""
        pid = partition_id(tenant, name)
        epoch = await self.epochs.get(tenant, name)
        current = self._views.get(pid)
        if current is None or current.epoch != epoch:
            current = await _stored(self._load_view, tenant, name, epoch)
            self._views[pid] = current
        return current

    # ------------------------------------------------------------------ Retriever

    async def retrieve(self, request: RetrieveRequest) -> RetrieveResponse:
        view = await self.view(request.tenant, request.collection)
        return await self.search.run(request, view)

    async def embed(self, request: EmbedRequest) -> EmbedResponse:
        """Vectors of the dense embedder, the same ones the index holds (passages) and searches with (queries)."""
        with stage("embed_api"):
            return await asyncio.to_thread(self._embed, request)

    def _embed(self, request: EmbedRequest) -> EmbedResponse:
        embedder = self.embedder
        if not isinstance(embedder, TokenCounting):
            raise InvalidRequestError(f"The embedder {embedder.name} cannot count tokens, so it serves no embeddings.")
        if request.dimensions is not None and request.dimensions != embedder.dim:
            raise InvalidRequestError(f"This model makes {embedder.dim}-dimensional vectors only; it cannot make "
                                      f"{request.dimensions}.", param="dimensions")
        query = request.input_type == "query"
        counts = embedder.count_tokens(request.texts, query=query)
        limit = embedder.max_tokens
        if not request.truncate:
            for index, count in enumerate(counts):
                if count > limit:
                    raise InvalidRequestError(
                        f"Input {index} is {count} tokens long (with e5's prefix); this model reads at most {limit}. "
                        "Shorten it, or set truncate to true to embed its first tokens.",
                        param="input", code="context_length_exceeded")
        vectors = embedder.embed_queries(request.texts) if query else embedder.embed_passages(request.texts)
        return EmbedResponse(model=embedder.name, vectors=vectors.tolist(), tokens=[min(c, limit) for c in counts])
