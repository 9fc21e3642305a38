"""A BM25 index over analyzed chunk terms (bm25s), persisted on disk under a corpus fingerprint.

The index is immutable: a corpus change builds a new one from the stored terms (no re-analysis), which
takes well under a second for tens of thousands of chunks. A saved index is reused only when its
fingerprint (a hash of every committed document's id and content hash) matches the corpus exactly, so
it can never serve a half-applied or outdated corpus.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

__all__ = ["BM25Index"]

_META = "ragd_bm25.json"


class BM25Index:
    """Okapi BM25 over chunks; ``search`` returns (chunk_id, score) best first, positive scores only."""

    def __init__(self, chunk_ids: Sequence[str], terms: Sequence[Sequence[str]], *, fingerprint: str = "",
                 k1: float = 1.5, b: float = 0.75) -> None:
        if len(chunk_ids) != len(terms):
            raise ValueError("one term list per chunk id")
        self.chunk_ids = list(chunk_ids)
        self.fingerprint = fingerprint
        self._model: Any = None
        if self.chunk_ids:
            self._model = bm25s.BM25(k1=k1, b=b)
            self._model.index([list(t) or [""] for t in terms], show_progress=False)
            self._vocab: dict[str, int] = dict(self._model.vocab_dict)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def search(self, query_terms: Sequence[str], k: int,
               allowed: Collection[str] | None = None) -> list[tuple[str, float]]:
        """The best ``k`` chunks; with ``allowed``, only chunks in it are candidates (a metadata filter
        applied before ranking, so a selective filter still gets ``k`` results)."""
        if self._model is None or k <= 0:
            return []
        known = [t for t in query_terms if t and t in self._vocab]
        if not known:
            return []
        scores = np.asarray(self._model.get_scores(known), dtype=np.float32)
        if allowed is not None:
            scores = np.where(np.fromiter((c in allowed for c in self.chunk_ids), dtype=bool,
                                          count=len(self.chunk_ids)), scores, np.float32(0.0))
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.chunk_ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def save(self, directory: Path) -> None:
        """Write the index atomically: into a sibling temp dir, then rename over ``directory``."""
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._model is not None:
            self._model.save(str(tmp))
        (tmp / _META).write_text(json.dumps({"fingerprint": self.fingerprint, "chunk_ids": self.chunk_ids}))
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path, fingerprint: str) -> BM25Index | None:
        """The saved index when it was built for exactly ``fingerprint``; None otherwise."""
        try:
            meta = json.loads((directory / _META).read_text())
            if meta.get("fingerprint") != fingerprint:
                return None
            index = cls([], [], fingerprint=fingerprint)
            index.chunk_ids = list(meta["chunk_ids"])
            if index.chunk_ids:
                index._model = bm25s.BM25.load(str(directory))
                index._vocab = dict(index._model.vocab_dict)
            return index
        except (OSError, ValueError, KeyError):
            return None
