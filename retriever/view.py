"""A replica's in-memory view of one collection at one epoch: committed documents, their chunks, BM25.

Views are immutable; a change builds a new view and swaps it in, so a search never sees a half-applied
document. Orphan chunks (written by an ingest that never committed) are simply not in the view.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retriever.bm25 import BM25Index
from retriever.store import ChunkRecord, DocRecord
from services.filters import filter_digest, matches

__all__ = ["CorpusView", "FilterScope"]

_log = logging.getLogger("ragd.retriever")
_SCOPES_KEPT = 64  # filter scopes remembered per view (a view lives for one epoch)


@dataclass(frozen=True, slots=True)
class FilterScope:
    """What a metadata filter leaves of a view: the allowed documents and their chunks, and the Chroma
    ``where`` that restricts a dense query to them (None when every document passes)."""

    docs: frozenset[str]
    chunks: frozenset[str]
    where: dict[str, Any] | None


@dataclass
class CorpusView:
    epoch: str
    docs: Mapping[str, DocRecord]
    chunks: Mapping[str, ChunkRecord]
    embedder: str = ""
    bm25_dir: Path | None = None
    bm25_params: tuple[float, float] = (1.2, 0.5)  # (k1, b)
    _bm25: BM25Index | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)
    _scopes: OrderedDict[str, FilterScope] = field(default_factory=OrderedDict, repr=False)

    @classmethod
    def from_records(cls, epoch: str, docs: Mapping[str, DocRecord], chunks: Iterable[ChunkRecord], *,
                     embedder: str = "", bm25_dir: Path | None = None,
                     bm25_params: tuple[float, float] = (1.2, 0.5)) -> CorpusView:
        """Keep only chunks that a committed document lists."""
        committed = {cid for doc in docs.values() for cid in doc.chunk_ids}
        kept = {c.id: c for c in chunks if c.id in committed}
        return cls(epoch=epoch, docs=dict(docs), chunks=kept, embedder=embedder, bm25_dir=bm25_dir,
                   bm25_params=bm25_params)

    @property
    def fingerprint(self) -> str:
        """Hash of every committed (doc id, content hash): equal fingerprints mean equal corpora."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for doc_id in sorted(self.docs):
                digest.update(f"{doc_id}\x00{self.docs[doc_id].content_hash}\x00".encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def changed(self, epoch: str, upserts: Mapping[str, tuple[DocRecord, list[ChunkRecord]]],
                deletes: Iterable[str] = ()) -> CorpusView:
        """A new view with documents replaced/added and deleted; this view is left as it was."""
        docs = dict(self.docs)
        chunks = dict(self.chunks)
        for doc_id in [*deletes, *upserts]:
            old = docs.pop(doc_id, None)
            for cid in old.chunk_ids if old else ():
                chunks.pop(cid, None)
        for doc_id, (record, records) in upserts.items():
            docs[doc_id] = record
            chunks.update((c.id, c) for c in records)
        return CorpusView(epoch=epoch, docs=docs, chunks=chunks, embedder=self.embedder, bm25_dir=self.bm25_dir,
                          bm25_params=self.bm25_params)

    def with_epoch(self, epoch: str) -> CorpusView:
        return CorpusView(epoch=epoch, docs=self.docs, chunks=self.chunks, embedder=self.embedder,
                          bm25_dir=self.bm25_dir, bm25_params=self.bm25_params, _bm25=self._bm25,
                          _fingerprint=self._fingerprint)

    def scope(self, where: Mapping[str, Any] | None) -> FilterScope | None:
        """The documents a (validated) metadata filter allows, evaluated once over the document records
        and shared by the BM25 and the dense side; None for no filter."""
        if not where:
            return None
        key = filter_digest(where)
        with self._lock:
            known = self._scopes.get(key)
            if known is not None:
                self._scopes.move_to_end(key)
                return known
        docs = frozenset(doc_id for doc_id, record in self.docs.items() if matches(where, record.metadata))
        chunks = frozenset(cid for doc_id in docs for cid in self.docs[doc_id].chunk_ids if cid in self.chunks)
        chroma_where = None if len(docs) == len(self.docs) else {"doc_id": {"$in": sorted(docs)}}
        made = FilterScope(docs=docs, chunks=chunks, where=chroma_where)
        with self._lock:
            self._scopes[key] = made
            if len(self._scopes) > _SCOPES_KEPT:
                self._scopes.popitem(last=False)
        return made

    def bm25(self) -> BM25Index:
        """The BM25 index of this view: loaded from disk when saved for this corpus, else built and saved."""
        with self._lock:
            if self._bm25 is None:
                self._bm25 = self._load_or_build()
            return self._bm25

    def _load_or_build(self) -> BM25Index:
        k1, b = self.bm25_params
        key = f"{self.fingerprint}:k1={k1}:b={b}"  # a saved index serves only the same corpus and parameters
        if self.bm25_dir is not None:
            saved = BM25Index.load(self.bm25_dir, key)
            if saved is not None:
                return saved
        ordered = sorted(self.chunks.values(), key=lambda c: (c.doc_id, c.ordinal, c.id))
        index = BM25Index([c.id for c in ordered], [c.terms for c in ordered], fingerprint=key, k1=k1, b=b)
        if self.bm25_dir is not None:
            try:
                self.bm25_dir.parent.mkdir(parents=True, exist_ok=True)
                index.save(self.bm25_dir)
            except OSError as exc:  # serving from memory still works; the next start rebuilds
                _log.warning("could not save the BM25 index", extra={"ragd": {"error": str(exc)}})
        return index
