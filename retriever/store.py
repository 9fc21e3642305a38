"""The Chroma side of the corpus: one chunk collection and one document-record collection per
(tenant, collection), named from ``partition_id`` so no tenant or collection name appears in Chroma names.

Chroma is the shared source of truth (every replica reads the same server):

* ``ragd-<pid>-c`` holds chunks: id, embedding (cosine HNSW), text, and metadata ``doc_id``, ``ord``,
  ``terms`` (the BM25 terms, space-separated, so another replica can rebuild BM25 without re-analysis),
  ``ts`` and the document's user metadata under ``meta.<key>``. Its collection metadata is the registry
  entry (hashed tenant, name, embedder, created).
  A chunk embedded as several dense windows keeps its first window's vector on its own row; the others
  are extra rows ``<chunk id>#<n>`` with metadata ``win_of`` (the chunk id), ``win`` (n >= 1), ``doc_id``,
  ``ts`` and the user metadata, and no text. They are written with their chunk, deleted with it, never
  listed as chunks, and a query maps them back to their chunk (a chunk scores its best window).
* ``ragd-<pid>-e`` holds the English side (``english_dense``): one row per English chunk, id = chunk id,
  the English embedder's vector of the chunk (cosine HNSW) and metadata ``doc_id``, ``ts`` and the user
  metadata; no text.
  Its collection metadata names that embedder. Rows are written with their chunk, before the commit
  point below, and deleted with it. Collections made before it existed get it on their next write.
* ``ragd-<pid>-d`` holds one record per document: full text, title, content hash, user metadata (JSON)
  and the list of chunk ids. Writing this record is the document's commit point: a chunk is visible
  only while a committed record lists it, so a crash mid-ingest leaves nothing half-visible.

Every method is synchronous and may block; the service calls them in a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import chromadb
import numpy as np
import numpy.typing as npt
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import ChromaError
from chromadb.errors import NotFoundError as ChromaNotFound

from retriever.settings import RetrieverSettings
from services.contracts import CollectionConfig, MetadataValue
from services.epochs import partition_id
from services.errors import CollectionNotFoundError, ConflictError, NotFoundError

__all__ = ["ChromaStore", "ChunkRecord", "DocRecord", "EnglishIndexMismatchError", "StoredCollection", "chunk_of_row"]

_PAGE = 2000
_WINDOW_SEP = "#"
# Nearest rows asked of Chroma per distinct chunk wanted: windows of one chunk take several rows.
_WINDOW_FANOUT = 3
_USER_PREFIX = "meta."  # user metadata keys on chunk rows
_DOC_VECTOR = [1.0]  # record collections need a vector; records are only ever fetched by id


@dataclass(frozen=True, slots=True)
class DocRecord:
    id: str
    title: str
    content_hash: str
    chunk_ids: tuple[str, ...]
    metadata: dict[str, MetadataValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    id: str
    doc_id: str
    ordinal: int
    text: str
    terms: tuple[str, ...]
    written_at: float = 0.0


@dataclass(frozen=True, slots=True)
class StoredCollection:
    name: str
    config: CollectionConfig
    embedder: str
    documents: int
    chunks: int


def tenant_hash(tenant: str) -> str:
    return hashlib.sha256(tenant.encode()).hexdigest()[:32]


def _names(tenant: str, name: str) -> tuple[str, str]:
    pid = partition_id(tenant, name)
    return f"ragd-{pid}-c", f"ragd-{pid}-d"


def _english_name(tenant: str, name: str) -> str:
    return f"ragd-{partition_id(tenant, name)}-e"


class EnglishIndexMismatchError(RuntimeError):
    """The collection's English vectors were made by another embedder than the one loaded now."""


class ChromaStore:
    """Chunks and document records of every tenant's collections in one Chroma (local files or server)."""

    def __init__(self, settings: RetrieverSettings) -> None:
        self._settings = settings
        self._client: Any = None
        self._opening = threading.Lock()

    def open(self) -> None:
        with self._opening:
            if self._client is None:
                self._client = self._connect()

    def _connect(self) -> Any:
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if self._settings.chroma_mode == "http":
            url = urlparse(self._settings.chroma_url)
            return chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                       ssl=url.scheme == "https", settings=chroma_settings)
        path = self._settings.data_dir / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)

    @property
    def client(self) -> Any:
        """The Chroma client, connected on first use."""
        if self._client is None:
            self.open()
        return self._client

    def heartbeat(self) -> bool:
        try:
            self.client.heartbeat()
            return True
        except Exception:
            return False

    # ------------------------------------------------------------------ collections

    def create(self, tenant: str, name: str, config: CollectionConfig, embedder: str) -> None:
        chunks_name, docs_name = _names(tenant, name)
        if self._find(chunks_name) is not None:
            raise ConflictError(f"Collection '{name}' already exists.", param="name")
        self.client.get_or_create_collection(docs_name, embedding_function=None,
                                             configuration={"hnsw": {"space": "l2"}})
        hnsw = {"space": "cosine", "max_neighbors": config.hnsw_m,
                "ef_construction": config.hnsw_ef_construction, "ef_search": config.hnsw_ef_search}
        meta = {"ragd_tenant": tenant_hash(tenant), "ragd_name": name, "ragd_embedder": embedder,
                "ragd_created": time.time()}
        try:
            self.client.create_collection(chunks_name, embedding_function=None, metadata=meta,
                                          configuration={"hnsw": hnsw})
        except ChromaError as exc:  # another replica created it between our check and now
            raise ConflictError(f"Collection '{name}' already exists.", param="name") from exc

    def delete(self, tenant: str, name: str) -> None:
        chunks_name, docs_name = _names(tenant, name)
        self._require(tenant, name)
        for collection in (chunks_name, docs_name, _english_name(tenant, name)):  # the registry entry first
            with contextlib.suppress(ChromaNotFound):
                self.client.delete_collection(collection)

    def describe(self, tenant: str, name: str) -> StoredCollection:
        chunks, docs = self._require(tenant, name)
        return self._describe(chunks, docs)

    def list_collections(self, tenant: str) -> list[StoredCollection]:
        wanted = tenant_hash(tenant)
        out: list[StoredCollection] = []
        for collection in self.client.list_collections():
            meta = collection.metadata or {}
            if meta.get("ragd_tenant") != wanted:
                continue
            try:
                out.append(self.describe(tenant, str(meta["ragd_name"])))
            except NotFoundError:
                continue  # deleted meanwhile
        return sorted(out, key=lambda c: c.name)

    def _describe(self, chunks: Any, docs: Any) -> StoredCollection:
        meta = chunks.metadata or {}
        hnsw = (chunks.configuration or {}).get("hnsw") or {}
        config = CollectionConfig(hnsw_m=hnsw.get("max_neighbors", 16),
                                  hnsw_ef_construction=hnsw.get("ef_construction", 100),
                                  hnsw_ef_search=hnsw.get("ef_search", 100))
        windows = len(chunks.get(where={"win": {"$gte": 1}}, include=[])["ids"])
        return StoredCollection(name=str(meta.get("ragd_name", "")), config=config,
                                embedder=str(meta.get("ragd_embedder", "")),
                                documents=docs.count(), chunks=chunks.count() - windows)

    def _find(self, collection: str) -> Any:
        client = self.client  # connection failures propagate: unreachable is not "not found"
        try:
            return client.get_collection(collection, embedding_function=None)
        except ChromaNotFound:
            return None

    def _require(self, tenant: str, name: str) -> tuple[Any, Any]:
        chunks_name, docs_name = _names(tenant, name)
        chunks = self._find(chunks_name)
        docs = self._find(docs_name) if chunks is not None else None
        if chunks is None or docs is None or (chunks.metadata or {}).get("ragd_tenant") != tenant_hash(tenant):
            raise CollectionNotFoundError(name)
        return chunks, docs

    # ------------------------------------------------------------------ reading

    def load_docs(self, tenant: str, name: str) -> dict[str, DocRecord]:
        _, docs = self._require(tenant, name)
        records: dict[str, DocRecord] = {}
        for ids, metas, _ in _pages(docs, ["metadatas"]):
            for doc_id, meta in zip(ids, metas, strict=True):
                records[doc_id] = _doc_record(doc_id, meta)
        return records

    def load_chunks(self, tenant: str, name: str) -> list[ChunkRecord]:
        chunks, _ = self._require(tenant, name)
        out: list[ChunkRecord] = []
        for ids, metas, texts in _pages(chunks, ["metadatas", "documents"]):
            for chunk_id, meta, text in zip(ids, metas, texts, strict=True):
                if "win_of" in meta:
                    continue
                out.append(ChunkRecord(id=chunk_id, doc_id=str(meta["doc_id"]), ordinal=int(meta["ord"]),
                                       text=text or "", terms=tuple(str(meta.get("terms", "")).split()),
                                       written_at=float(meta.get("ts", 0.0))))
        return out

    def dense_rows(self, tenant: str, name: str) -> tuple[list[str], npt.NDArray[np.float32]]:
        """Every dense row (chunk and window vectors, uncommitted ones included): (row ids, the vectors as a
        matrix). :func:`chunk_of_row` names a row's chunk."""
        chunks, _ = self._require(tenant, name)
        owners: list[str] = []
        rows: list[Any] = []
        offset = 0
        while True:
            got = chunks.get(include=["embeddings"], limit=_PAGE, offset=offset)
            if not got["ids"]:
                break
            owners.extend(got["ids"])
            rows.extend(got["embeddings"])
            offset += len(got["ids"])
        return owners, np.asarray(rows, dtype=np.float32).reshape(len(owners), -1)

    def get_document(self, tenant: str, name: str, doc_id: str) -> tuple[DocRecord, str] | None:
        _, docs = self._require(tenant, name)
        got = docs.get(ids=[doc_id], include=["metadatas", "documents"])
        if not got["ids"]:
            return None
        return _doc_record(doc_id, got["metadatas"][0]), got["documents"][0] or ""

    def query(self, tenant: str, name: str, vector: npt.NDArray[np.float32], n: int, *,
              where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """Nearest chunks by cosine similarity (1 - distance) of their best window, best first, at most ``n``;
        ``where`` (a Chroma filter on row metadata) restricts the rows searched."""
        chunks, _ = self._require(tenant, name)
        if n <= 0:
            return []
        got = chunks.query(query_embeddings=vector[None, :], n_results=n * _WINDOW_FANOUT, include=["distances"],
                           where=where)
        best: dict[str, float] = {}
        for row_id, distance in zip(got["ids"][0], got["distances"][0], strict=True):
            best.setdefault(chunk_of_row(row_id), 1.0 - float(distance))
        return list(best.items())[:n]

    def query_english(self, tenant: str, name: str, vector: npt.NDArray[np.float32], n: int,
                      embedder: str, *, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """Nearest chunks of the English side by cosine similarity, best first, at most ``n``; none when the
        collection has no English side yet. ``where`` restricts the rows searched, as in :meth:`query`."""
        self._require(tenant, name)
        english = self._find(_english_name(tenant, name))
        if english is None or n <= 0:
            return []
        made_by = (english.metadata or {}).get("ragd_embedder")
        if made_by != embedder:
            raise EnglishIndexMismatchError(f"English side embedded with {made_by}, not {embedder}")
        got = english.query(query_embeddings=vector[None, :], n_results=n, include=["distances"], where=where)
        return [(row_id, 1.0 - float(distance))
                for row_id, distance in zip(got["ids"][0], got["distances"][0], strict=True)]

    # ------------------------------------------------------------------ writing

    def write_english(self, tenant: str, name: str, chunks: Sequence[ChunkRecord],
                      vectors: npt.NDArray[np.float32], embedder: str,
                      metadata: Mapping[str, Mapping[str, MetadataValue]] | None = None) -> None:
        """Upsert the English side's rows of ``chunks`` (``vectors[i]`` is chunk i's), with their
        documents' user metadata as :meth:`write_chunks` stores it."""
        if not chunks:
            return
        self._require(tenant, name)
        english = self._english(tenant, name, embedder)
        now = time.time()
        step = self._batch_size()
        for start in range(0, len(chunks), step):
            part = chunks[start:start + step]
            english.upsert(ids=[c.id for c in part], embeddings=vectors[start:start + step],
                           metadatas=[{**_row_metadata((metadata or {}).get(c.doc_id, {})),
                                       "doc_id": c.doc_id, "ts": now} for c in part])

    def _english(self, tenant: str, name: str, embedder: str) -> Any:
        chunks, _ = self._require(tenant, name)
        hnsw = dict((chunks.configuration or {}).get("hnsw") or {})
        hnsw = {"space": "cosine", **{k: hnsw[k] for k in ("max_neighbors", "ef_construction", "ef_search")
                                      if k in hnsw}}
        english = self._find(_english_name(tenant, name))
        if english is None:
            try:
                english = self.client.create_collection(
                    _english_name(tenant, name), embedding_function=None, configuration={"hnsw": hnsw},
                    metadata={"ragd_embedder": embedder})
            except ChromaError:  # another replica created it between our check and now
                english = self.client.get_collection(_english_name(tenant, name), embedding_function=None)
        made_by = (english.metadata or {}).get("ragd_embedder")
        if made_by != embedder:
            raise EnglishIndexMismatchError(f"English side embedded with {made_by}, not {embedder}")
        return english

    def write_chunks(self, tenant: str, name: str, chunks: Sequence[ChunkRecord],
                     vectors: Sequence[npt.NDArray[np.float32]],
                     metadata: Mapping[str, Mapping[str, MetadataValue]] | None = None) -> None:
        """Upsert chunks; ``vectors[i]`` holds chunk i's window vectors (a 1-d vector or rows).
        ``metadata`` maps a document id to its user metadata, copied onto each of its rows."""
        collection, _ = self._require(tenant, name)
        now = time.time()
        rows: list[tuple[str, Any, str, dict[str, Any]]] = []
        for chunk, vecs in zip(chunks, vectors, strict=True):
            windows = np.atleast_2d(vecs)
            user = _row_metadata((metadata or {}).get(chunk.doc_id, {}))
            rows.append((chunk.id, windows[0], chunk.text, {**user, "doc_id": chunk.doc_id, "ord": chunk.ordinal,
                                                             "terms": " ".join(chunk.terms), "ts": now}))
            rows.extend((f"{chunk.id}{_WINDOW_SEP}{n}", windows[n], "",
                         {**user, "doc_id": chunk.doc_id, "win_of": chunk.id, "win": n, "ts": now})
                        for n in range(1, len(windows)))
        step = self._batch_size()
        for start in range(0, len(rows), step):
            part = rows[start:start + step]
            collection.upsert(ids=[r[0] for r in part], embeddings=np.stack([r[1] for r in part]),
                              documents=[r[2] for r in part], metadatas=[r[3] for r in part])

    def commit_docs(self, tenant: str, name: str, records: Sequence[tuple[DocRecord, str]]) -> None:
        """Write document records (the commit point of their chunks)."""
        _, docs = self._require(tenant, name)
        step = self._batch_size()
        for start in range(0, len(records), step):
            part = records[start:start + step]
            docs.upsert(ids=[r.id for r, _ in part], embeddings=[_DOC_VECTOR] * len(part),
                        documents=[text for _, text in part],
                        metadatas=[_doc_meta(r) for r, _ in part])

    def delete_docs(self, tenant: str, name: str, doc_ids: Sequence[str]) -> None:
        _, docs = self._require(tenant, name)
        if doc_ids:
            docs.delete(ids=list(doc_ids))

    def delete_chunks(self, tenant: str, name: str, chunk_ids: Sequence[str]) -> None:
        chunks, _ = self._require(tenant, name)
        ids = list(chunk_ids)
        step = self._batch_size()
        english = self._find(_english_name(tenant, name))
        for start in range(0, len(ids), step):
            chunks.delete(ids=ids[start:start + step])
            chunks.delete(where={"win_of": {"$in": ids[start:start + step]}})
            if english is not None:
                english.delete(ids=ids[start:start + step])

    def _batch_size(self) -> int:
        return max(1, min(int(self.client.get_max_batch_size()), 1000))


def chunk_of_row(row_id: str) -> str:
    """The chunk a dense row belongs to (a window row is ``<chunk id>#<n>``)."""
    return row_id.split(_WINDOW_SEP, 1)[0]


def _pages(collection: Any, include: list[str]) -> Iterator[tuple[list[str], list[Any], list[Any]]]:
    offset = 0
    while True:
        got = collection.get(include=include, limit=_PAGE, offset=offset)
        ids = list(got["ids"])
        if not ids:
            return
        metas = list(got.get("metadatas") or [{}] * len(ids))
        texts = list(got.get("documents") or [""] * len(ids))
        yield ids, metas, texts
        offset += len(ids)


def _row_metadata(metadata: Mapping[str, MetadataValue]) -> dict[str, Any]:
    """A document's user metadata as chunk-row metadata: keys under ``meta.`` (apart from ragd's own row
    keys), empty lists left out (Chroma stores no empty array)."""
    return {f"{_USER_PREFIX}{key}": value for key, value in metadata.items() if value != []}


def _doc_meta(record: DocRecord) -> dict[str, Any]:
    return {"title": record.title, "content_hash": record.content_hash,
            "chunk_ids": json.dumps(list(record.chunk_ids)),
            "meta": json.dumps(record.metadata, ensure_ascii=False, sort_keys=True), "ts": time.time()}


def _doc_record(doc_id: str, meta: dict[str, Any]) -> DocRecord:
    return DocRecord(id=doc_id, title=str(meta.get("title", "")), content_hash=str(meta.get("content_hash", "")),
                     chunk_ids=tuple(json.loads(str(meta.get("chunk_ids", "[]")))),
                     metadata=json.loads(str(meta.get("meta", "{}"))))
