"""A disk cache of the classifier's semantic vectors, so the protocol and training can be rerun
without encoding every text again (the encoder is the slow part: ~5 ms a text on 2 cores)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from guardrails.classifier import semantic_inputs
from guardrails.semantic import DIM, Matrix, SemanticSpec
from lab.guardrails.training import semantic_vectors

__all__ = ["VectorCache", "default_cache_dir"]


def default_cache_dir() -> Path:
    return Path(".ragd") / "guardrails" / "vectors"


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class VectorCache:
    """Vectors keyed by the encoder's input text, one file per :class:`SemanticSpec`."""

    def __init__(self, spec: SemanticSpec, directory: Path | None = None) -> None:
        self.spec = spec
        self.path = (directory or default_cache_dir()) / f"e5-l{spec.layers}-t{spec.tokens}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path, allow_pickle=False) as data:
                self._vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def vectors(self, texts: Sequence[str]) -> Matrix:
        """The vectors of ``texts`` (raw or normalised), encoding and saving only the missing ones."""
        keys = [_key(t) for t in semantic_inputs(texts)]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items())
        for start in range(0, len(missing), 2048):  # saved as it goes: a long run can be stopped
            chunk = missing[start : start + 2048]
            fresh = semantic_vectors([t for _, t in chunk], self.spec)
            self._vectors.update({k: v for (k, _), v in zip(chunk, fresh, strict=True)})
            self._save()
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, k in enumerate(keys):
            out[i] = self._vectors[k]
        return out

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._vectors))
        np.savez(self.path, keys=keys, vectors=np.stack(list(self._vectors.values())).astype(np.float32))
