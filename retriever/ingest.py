"""Turning incoming documents into records: ids, content hashes, chunks, BM25 terms, embeddings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from retriever.chunking import chunk_document, chunk_text, content_hash, dense_length
from retriever.embedders import Embedder
from retriever.settings import RetrieverSettings
from retriever.store import ChunkRecord, DocRecord
from retriever.text import analyze, detect_language
from services.contracts import DocumentIn
from services.errors import InvalidRequestError, PayloadTooLargeError

__all__ = [
    "Prepared",
    "dense_windows",
    "document_hash",
    "document_id",
    "embed_batched",
    "embed_passages",
    "english_passages",
    "passage_text",
    "prepare",
    "validate",
]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A document ready to write: its record, full text and chunk records (vectors come separately)."""

    record: DocRecord
    text: str
    chunks: list[ChunkRecord]


def document_hash(doc: DocumentIn) -> str:
    """Hash of everything stored for a document: same hash, nothing to do."""
    return content_hash(doc.title, doc.text, json.dumps(doc.metadata, sort_keys=True, ensure_ascii=False))


def document_id(doc: DocumentIn) -> str:
    """The given id, or one derived from the content (so re-sending the same text is a no-op)."""
    return doc.id if doc.id else "sha-" + content_hash(doc.title, doc.text)[:24]


def validate(docs: Sequence[DocumentIn], settings: RetrieverSettings) -> None:
    if len(docs) > settings.max_documents_per_request:
        raise PayloadTooLargeError(
            f"At most {settings.max_documents_per_request} documents per request; got {len(docs)}.")
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        if not doc.text.strip():
            raise InvalidRequestError(f"Document {i} has no text.", param=f"documents.{i}.text")
        if len(doc.text.encode("utf-8", "surrogatepass")) > settings.max_document_bytes:
            raise PayloadTooLargeError(
                f"Document {i} is over the limit of {settings.max_document_bytes} bytes.",
                param=f"documents.{i}.text")
        doc_id = document_id(doc)
        if doc_id in seen:
            raise InvalidRequestError(f"Document id '{doc_id}' appears twice in one request.",
                                      param=f"documents.{i}.id")
        seen.add(doc_id)


def passage_text(title: str, text: str) -> str:
    """What is embedded and BM25-indexed for a chunk: its document title, then the chunk."""
    return f"{title}\n{text}" if title else text


def prepare(doc: DocumentIn, settings: RetrieverSettings) -> Prepared:
    """Chunk and analyze one document (CPU work; call it in a thread)."""
    doc_id = document_id(doc)
    chunks = chunk_document(doc_id, doc.text, size=settings.chunk_size, overlap=settings.chunk_overlap)
    records = [ChunkRecord(id=c.id, doc_id=doc_id, ordinal=c.ordinal, text=c.text,
                           terms=tuple(analyze(passage_text(doc.title, c.text)))) for c in chunks]
    record = DocRecord(id=doc_id, title=doc.title, content_hash=document_hash(doc),
                       chunk_ids=tuple(c.id for c in chunks), metadata=dict(doc.metadata))
    return Prepared(record=record, text=doc.text, chunks=records)


def dense_windows(text: str, window: int, overlap: int) -> list[str]:
    """The texts embedded for one chunk: the chunk itself when it fits ``window`` (by
    :func:`~retriever.chunking.dense_length`; 0 means no limit), else overlapping windows of whole sentences.

    Small embedders match a question best against a passage of a few sentences (docs/retrieval.md, "Dense
    windows").
    """
    if not window or dense_length(text) <= window:
        return [text]
    return chunk_text(text, size=window, overlap=overlap, measure=dense_length) or [text]


def english_passages(titles: Sequence[str], chunks: Sequence[ChunkRecord]) -> tuple[list[ChunkRecord], list[str]]:
    """The chunks the English side indexes (their text with the title, in English by
    :func:`~retriever.text.detect_language`) and those texts."""
    picked = [(chunk, passage_text(title, chunk.text)) for title, chunk in zip(titles, chunks, strict=True)]
    kept = [(chunk, text) for chunk, text in picked if detect_language(text) == "en"]
    return [c for c, _ in kept], [t for _, t in kept]


def embed_batched(embedder: Embedder, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]:
    """Passage vectors of ``texts``, ``batch_size`` at a time (call it in a thread)."""
    parts = [embedder.embed_passages(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
    if not parts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def embed_passages(embedder: Embedder, titles: Sequence[str], chunks: Sequence[ChunkRecord],
                   batch_size: int, *, window: int = 0, overlap: int = 0) -> list[npt.NDArray[np.float32]]:
    """Per chunk, the vectors of its dense windows (one row per window), embedded in batches
    (call it in a thread). Every window is embedded with its document title, like the chunk."""
    texts: list[str] = []
    counts: list[int] = []
    for title, chunk in zip(titles, chunks, strict=True):
        windows = dense_windows(chunk.text, window, overlap)
        texts.extend(passage_text(title, w) for w in windows)
        counts.append(len(windows))
    if not texts:
        return []
    flat = embed_batched(embedder, texts, batch_size)
    bounds = np.cumsum(counts)[:-1]
    return list(np.split(flat, bounds))
