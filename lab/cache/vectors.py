"""Question vectors of the pair sets, kept on disk per embedder so reruns embed only new questions."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from embeddings.protocol import Embedder
from lab.cache.evaluation import Pair, Vectors, embed_all

__all__ = ["cached_vectors"]


def cached_vectors(pairs: Sequence[Pair], name: str, make: Callable[[], Embedder], root: Path) -> Vectors:
    """The vector of every question of ``pairs`` by the embedder ``name`` (built by ``make`` only when a
    question is new), kept in ``root/cache-vectors-<name>.npz``."""
    path = root / f"cache-vectors-{name}.npz"
    known: Vectors = {}
    if path.exists():
        with np.load(path) as saved:
            known = dict(zip(saved["texts"].tolist(), saved["vectors"], strict=True))
    texts = {p.a for p in pairs} | {p.b for p in pairs}
    missing = [t for t in sorted(texts) if t not in known]
    if missing:
        embedder = make()
        fresh = embed_all([Pair(_key(t), "", "", False, "", t, t) for t in missing], embedder)
        known.update(fresh)
        root.mkdir(parents=True, exist_ok=True)
        ordered = sorted(known)
        np.savez(path, texts=np.array(ordered), vectors=np.stack([known[t] for t in ordered]))
    return {t: known[t] for t in texts}


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
