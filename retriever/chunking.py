"""Sentence-respecting chunking with overlap, and content-derived chunk ids.

Chunks are packed from whole sentences up to ``size`` characters; the next chunk starts with the last
sentences of the previous one, up to ``overlap`` characters. A sentence longer than ``size`` is cut at
whitespace (or hard, for text without spaces). Chunk ids hash (document id, chunk text), so re-chunking an
unchanged document yields the same ids and a changed document changes only its own.

We do not use llama-index's ``SentenceSplitter`` here: it counts tiktoken tokens (a tokenizer unrelated to
our embedders), and its sentence rules miss Korean endings without punctuation.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from retriever.text import split_sentences

__all__ = ["Chunk", "chunk_document", "chunk_id", "chunk_text", "content_hash", "dense_length"]

_HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    ordinal: int
    text: str


def content_hash(*parts: str) -> str:
    """sha256 over the parts, separated so that ("ab", "c") and ("a", "bc") differ."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


def chunk_id(doc_id: str, text: str, occurrence: int = 0) -> str:
    """Id of a chunk: hash of its document id and content (and which repeat of that content it is)."""
    return content_hash(doc_id, text, str(occurrence))[:32]


def dense_length(text: str) -> int:
    """Length of ``text`` for dense windows: characters, a Hangul syllable counting as two.

    A Hangul syllable carries about as many subword tokens of multilingual-e5's tokenizer as two Latin
    letters, so one budget gives windows of about the same number of tokens in both languages.
    """
    return len(text) + len(_HANGUL_SYLLABLE.findall(text))


def _cut_long(sentence: str, size: int) -> list[str]:
    pieces: list[str] = []
    start, end = 0, len(sentence)
    while end - start > size:
        cut = sentence.rfind(" ", start + size // 2, start + size)
        cut = cut if cut > start else start + size
        pieces.append(sentence[start:cut].strip())
        start = cut
    pieces.append(sentence[start:].strip())
    return [p for p in pieces if p]


def _units(text: str, size: int, measure: Callable[[str], int]) -> list[str]:
    units: list[str] = []
    for sentence in split_sentences(text):
        weight = measure(sentence)
        if weight > size:  # cut at the character budget that makes about ``size`` by ``measure``
            units.extend(_cut_long(sentence, max(1, size * len(sentence) // weight)))
        else:
            units.append(sentence)
    return units


def chunk_text(text: str, *, size: int, overlap: int, measure: Callable[[str], int] = len) -> list[str]:
    """Split ``text`` into chunks of whole sentences, about ``size`` long, ``overlap`` shared.

    Lengths are characters unless ``measure`` says otherwise (e.g. :func:`dense_length`).
    """
    if overlap >= size:
        raise ValueError("chunk overlap must be smaller than chunk size")
    chunks: list[str] = []
    current: list[str] = []
    length = 0
    for unit in _units(text, size, measure):
        unit_length = measure(unit)
        if current and length + 1 + unit_length > size:
            chunks.append(" ".join(current))
            current, length = _overlap_tail(current, overlap, size - unit_length - 1, measure)
        current.append(unit)
        length += unit_length + (1 if length else 0)
    if current:
        chunks.append(" ".join(current))
    return chunks


def _overlap_tail(sentences: list[str], overlap: int, room: int,
                  measure: Callable[[str], int]) -> tuple[list[str], int]:
    tail: list[str] = []
    length = 0
    for sentence in reversed(sentences):
        grown = length + measure(sentence) + (1 if tail else 0)
        if grown > min(overlap, room):
            break
        tail.insert(0, sentence)
        length = grown
    return tail, length


def chunk_document(doc_id: str, text: str, *, size: int, overlap: int) -> list[Chunk]:
    """Chunks of one document with stable ids (an empty document has no chunks)."""
    seen: Counter[str] = Counter()
    out: list[Chunk] = []
    for ordinal, piece in enumerate(chunk_text(text, size=size, overlap=overlap)):
        out.append(Chunk(id=chunk_id(doc_id, piece, seen[piece]), ordinal=ordinal, text=piece))
        seen[piece] += 1
    return out
