"""A replica's in-memory view of one collection at one epoch: committed documents, their chunks, BM25.

Views are immutable; a change builds a new view and swaps it in, so a search never sees a half-applied
document. Orphan chunks (written by an ingest that never committed) are simply not in the view.

A view derived by :meth:`CorpusView.changed` from a view whose BM25 index is loaded updates that index
incrementally (the changed chunks become a delta segment, see :mod:`retriever.bm25`) and saves only the
delta; when the deltas outgrow their share, a background thread merges the segments into one.
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


class _IndexWriter:
    """Serialises saves of one collection's BM25 folder and lets only the newest index write it (a merge
    finishing after a newer change must not put its older manifest back)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latest = ""
        self.merging = threading.Lock()  # one background merge per collection at a time

    def save(self, index: BM25Index, directory: Path | None, *, newest: bool) -> None:
        if directory is None:
            return
        with self.lock:
            if newest:
                self.latest = index.fingerprint
            elif index.fingerprint != self.latest:
                return
            try:
                directory.parent.mkdir(parents=True, exist_ok=True)
                index.save(directory)
            except OSError as exc:  # serving from memory still works; the next start rebuilds
                _log.warning("could not save the BM25 index", extra={"ragd": {"error": str(exc)}})


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
    bm25_merge: tuple[int, float] = (8, 0.1)  # (most segments, delta share) before a background merge
    _bm25: BM25Index | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)
    _scopes: OrderedDict[str, FilterScope] = field(default_factory=OrderedDict, repr=False)
    _writer: _IndexWriter = field(default_factory=_IndexWriter, repr=False)

    @classmethod
    def from_records(cls, epoch: str, docs: Mapping[str, DocRecord], chunks: Iterable[ChunkRecord], *,
                     embedder: str = "", bm25_dir: Path | None = None,
                     bm25_params: tuple[float, float] = (1.2, 0.5),
                     bm25_merge: tuple[int, float] = (8, 0.1)) -> CorpusView:
        """Keep only chunks that a committed document lists."""
        committed = {cid for doc in docs.values() for cid in doc.chunk_ids}
        kept = {c.id: c for c in chunks if c.id in committed}
        return cls(epoch=epoch, docs=dict(docs), chunks=kept, embedder=embedder, bm25_dir=bm25_dir,
                   bm25_params=bm25_params, bm25_merge=bm25_merge)

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
        view = CorpusView(epoch=epoch, docs=docs, chunks=chunks, embedder=self.embedder, bm25_dir=self.bm25_dir,
                          bm25_params=self.bm25_params, bm25_merge=self.bm25_merge, _writer=self._writer)
        with self._lock:
            current = self._bm25
        if current is not None:  # else the new view builds (or loads) its index on first use
            removed = [cid for doc_id in [*deletes, *upserts] if doc_id in self.docs
                       for cid in self.docs[doc_id].chunk_ids]
            added = [c for _, records in upserts.values() for c in records]
            index = current.updated(removed, [c.id for c in added], [c.terms for c in added],
                                    fingerprint=view.bm25_key)
            view._bm25 = index
            self._writer.save(index, self.bm25_dir, newest=True)
            most, share = self.bm25_merge
            if index.needs_merge(max_segments=most, delta_share=share) and self._writer.merging.acquire(blocking=False):
                threading.Thread(target=view._merge, args=(index,), name="ragd-bm25-merge", daemon=True).start()
        return view

    def _merge(self, index: BM25Index) -> None:
        """Merge ``index``'s segments (it keeps serving meanwhile, with the same scores) and save it if it is
        still the newest; a change made meanwhile merges on its own next change."""
        try:
            index.merge()
        except Exception as exc:  # the unmerged segments keep serving, with the same scores
            _log.warning("BM25 merge failed", extra={"ragd": {"error": type(exc).__name__}})
            return
        finally:
            self._writer.merging.release()
        self._writer.save(index, self.bm25_dir, newest=False)

    def with_epoch(self, epoch: str) -> CorpusView:
        return CorpusView(epoch=epoch, docs=self.docs, chunks=self.chunks, embedder=self.embedder,
                          bm25_dir=self.bm25_dir, bm25_params=self.bm25_params, bm25_merge=self.bm25_merge,
                          _bm25=self._bm25, _fingerprint=self._fingerprint, _writer=self._writer)

    @property
    def bm25_key(self) -> str:
        """What a saved BM25 index must have been built for: this corpus and these parameters."""
        k1, b = self.bm25_params
        return f"{self.fingerprint}:k1={k1}:b={b}"

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
        key = self.bm25_key  # a saved index serves only the same corpus and parameters
        if self.bm25_dir is not None:
            saved = BM25Index.load(self.bm25_dir, key)
            if saved is not None:
                return saved
        ordered = sorted(self.chunks.values(), key=lambda c: (c.doc_id, c.ordinal, c.id))
        index = BM25Index([c.id for c in ordered], [c.terms for c in ordered], fingerprint=key, k1=k1, b=b)
        self._writer.save(index, self.bm25_dir, newest=True)
        return index
