"""The one embedder interface every piece uses: text -> L2-normalised float32 rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "Embedder",
    "QueryPreparing",
    "SameVectorsAs",
    "TokenCounting",
    "Vectors",
    "embeds_as",
    "l2_normalise",
    "prepare_queries",
]

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns queries and passages into comparable unit vectors of shape (n, dim)."""

    name: str

    @property
    def dim(self) -> int: ...
    def embed_queries(self, texts: Sequence[str]) -> Vectors: ...
    def embed_passages(self, texts: Sequence[str]) -> Vectors: ...


@runtime_checkable
class TokenCounting(Protocol):
    """An embedder that tells how many tokens it feeds for a text (prefix and special tokens included)
    and the most it reads; longer text is truncated. ``/v1/embeddings`` reports and enforces these."""

    @property
    def max_tokens(self) -> int: ...
    def count_tokens(self, texts: Sequence[str], *, query: bool) -> list[int]: ...


@runtime_checkable
class QueryPreparing(Protocol):
    """An embedder that splits a query call in two: ``prepare_queries`` does the brief Python part now
    (tokenising, holding the GIL) and returns the heavy part, which releases the GIL, to run in a worker
    thread. A caller that overlaps embedding with other Python work gains the interpreter's switch
    interval (5 ms) on every GIL hand-back the worker would otherwise wait for."""

    def prepare_queries(self, texts: Sequence[str]) -> Callable[[], Vectors]: ...


def prepare_queries(embedder: Embedder, texts: Sequence[str]) -> Callable[[], Vectors]:
    """``embedder``'s own split when it has one, else the whole ``embed_queries`` call, deferred."""
    if isinstance(embedder, QueryPreparing):
        return embedder.prepare_queries(texts)
    return partial(embedder.embed_queries, list(texts))


@runtime_checkable
class SameVectorsAs(Protocol):
    """An embedder whose passage vectors match those of other embedder names closely enough that an
    index they wrote stays valid for it (the same weights under another runtime)."""

    same_vectors_as: frozenset[str]


def embeds_as(embedder: Embedder, recorded: str) -> bool:
    """True when an index whose vectors were written by the embedder named ``recorded`` is valid for
    ``embedder``: the same name, or one it declares in ``same_vectors_as``."""
    if recorded == embedder.name:
        return True
    return isinstance(embedder, SameVectorsAs) and recorded in embedder.same_vectors_as


def l2_normalise(vectors: Any) -> Vectors:
    """float32 rows scaled to unit length (zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    out: Vectors = array / np.maximum(norms, 1e-12)
    return out


