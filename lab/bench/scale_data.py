"""The generated corpus of ``ragd bench scale``: documents recombined from real sentences, and passage vectors
from a hashed bag of words standing in for the embedder's.

Text: each document is 3 to 7 sentences drawn at random from one language's pool (SciFact abstracts for
English, KorQuAD contexts for Korean, half the documents each), so its terms follow real word frequencies
and real morphology (the BM25 analyzer sees real English and Korean) while documents are made up. Vectors:
an embedder's passage side is replaced by :class:`HashedPassageEmbedder` (each word adds a fixed random
vector, the sum is normalised), because embedding 100k passages with the real model takes hours on 2 CPU
cores; queries still go through the real model, so query latency is the real one.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from embeddings.protocol import Embedder, l2_normalise
from retriever.text import analyze
from services.contracts import DocumentIn
from services.text import split_sentences

__all__ = ["SYNTHETIC", "HashedPassageEmbedder", "Pools", "SentenceTerms", "generated", "generated_docs", "load_pools"]

SYNTHETIC = {
    "text": "documents of 3-7 sentences drawn at random from SciFact abstracts (English, half the documents) or "
            "KorQuAD dev contexts (Korean, the other half); real sentences, made-up documents",
    "passage_vectors": "hashed bag of words: each whitespace word adds a fixed random 384-d vector (4096 "
                       "buckets), normalised; the real embedder's dimension, the real HNSW settings",
    "query_vectors": "real (the configured embedders embed every query)",
    "queries": "real SciFact test claims and KorQuAD dev questions, alternating",
    "build": "--store-writes vectors (the default): the chunk rows written to Chroma hold the vectors and doc ids "
             "only (what a search reads), the view with the chunk text and BM25 terms is built in memory and put in "
             "place at a new epoch; --store-writes full: every row as ingest writes it, then an epoch bump and a cold "
             "view load from Chroma. Either way BM25 terms are each sentence's analyzed once and concatenated; the "
             "100 added documents and the ingest-overhead run go through LocalRetriever.add_documents",
}

_BUCKETS = 4096


class HashedPassageEmbedder:
    """An embedder whose queries are ``real``'s and whose passages are hashed bags of words (fast, text-
    dependent, the same dimension and name as ``real``'s, so the collection accepts them)."""

    def __init__(self, real: Embedder, *, seed: int = 7) -> None:
        self.real = real
        self.name = real.name
        self._basis = np.random.default_rng(seed).standard_normal((_BUCKETS, real.dim)).astype(np.float32)

    @property
    def dim(self) -> int:
        return int(self._basis.shape[1])

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.real.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            buckets = [zlib.crc32(w.encode()) % _BUCKETS for w in text.lower().split()] or [0]
            rows[i] = self._basis[buckets].sum(axis=0)
        return l2_normalise(rows)


@dataclass(frozen=True)
class Pools:
    english: list[str]
    korean: list[str]
    queries: list[str]


def load_pools(data: Path) -> Pools:
    """Sentences of SciFact and KorQuAD, and their queries interleaved (English, Korean, ...)."""
    english = [s for doc in _jsonl(data / "scifact" / "corpus.jsonl") for s in split_sentences(doc["text"])]
    korean = [s for doc in _jsonl(data / "korquad_v1_dev" / "corpus.jsonl") for s in split_sentences(doc["text"])]
    test = data / "scifact" / "queries.test.jsonl"
    en_queries = [q["text"] for q in _jsonl(test if test.exists() else data / "scifact" / "queries.jsonl")]
    ko_queries = [q["text"] for q in _jsonl(data / "korquad_v1_dev" / "queries.jsonl")]
    ko_queries = random.Random(3).sample(ko_queries, min(len(ko_queries), len(en_queries)))
    queries = [q for pair in zip(en_queries, ko_queries, strict=False) for q in pair]
    return Pools(english=[s for s in english if len(s) > 20], korean=[s for s in korean if len(s) > 10],
                 queries=queries)


def generated_docs(pools: Pools, count: int, *, prefix: str, seed: int) -> Iterator[DocumentIn]:
    """``count`` documents ``<prefix><n>`` of 3-7 sentences each, alternating English and Korean."""
    for doc, _ in generated(pools, count, prefix=prefix, seed=seed):
        yield doc


def generated(pools: Pools, count: int, *, prefix: str, seed: int) -> Iterator[tuple[DocumentIn, list[str]]]:
    """Like :func:`generated_docs`, with each document's sentences."""
    rng = random.Random(seed)
    for n in range(count):
        pool = pools.english if n % 2 == 0 else pools.korean
        sentences = [rng.choice(pool) for _ in range(rng.randint(3, 7))]
        yield DocumentIn(id=f"{prefix}{n}", text=" ".join(sentences)), sentences


class SentenceTerms:
    """BM25 terms of a generated document as the concatenated terms of its sentences, each sentence
    analyzed once (the pools repeat sentences across documents)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, ...]] = {}

    def __call__(self, sentences: Sequence[str]) -> tuple[str, ...]:
        out: list[str] = []
        for sentence in sentences:
            terms = self._cache.get(sentence)
            if terms is None:
                terms = self._cache[sentence] = tuple(analyze(sentence))
            out.extend(terms)
        return tuple(out)


def _jsonl(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
