"""The classifier's semantic block: a short text's meaning as a vector, from the first layers of the
packaged multilingual-e5-small under ONNX Runtime (:mod:`embeddings.e5_onnx`).

Hashed n-grams learn the words of the sources they were trained on; a new source words its attacks
differently. A sentence vector carries what the words mean, in English and Korean alike, so the
linear model over [n-grams | vector] catches more attacks of sources it never saw. The vector is the
mean-pooled output of e5's 6th of 12 layers over the first 32 tokens: on the dev protocol (a model
trained on source group A, scored on group B's training texts; docs/guardrails.md) it scores about as
well as the whole model at about half its cost. The vector is computed beside the pattern rails and
the n-gram features (ONNX Runtime releases the GIL), so it adds little to the whole check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from embeddings.e5_onnx import E5OnnxEmbedder
from services.settings import default_data_dir

__all__ = ["DIM", "SemanticEncoder", "SemanticSpec"]

DIM = E5OnnxEmbedder.dim
Matrix = npt.NDArray[np.float32]
_PREFIX = "query: "


@dataclass(frozen=True)
class SemanticSpec:
    """How the vectors a classifier was trained on were made; stored with its weights, so a model is
    always scored with the vectors it learned from."""

    layers: int = 6
    tokens: int = 32
    scale: float = 2.0  # the block's weight against the l2-normalised n-gram blocks


class SemanticEncoder:
    """Unit vectors of normalised texts for one :class:`SemanticSpec` (one ONNX session per process)."""

    def __init__(self, spec: SemanticSpec, *, models_dir: Path | None = None, threads: int = 1) -> None:
        """``models_dir``: where the built graph is cached (default: the data dir's ``models``)."""
        self.spec = spec
        self._embedder = E5OnnxEmbedder.shared(models_dir or default_data_dir() / "models", threads, spec.tokens,
                                               spec.layers)

    def warm_up(self) -> None:
        self._embedder.warm_up()

    def prepare(self, texts: Sequence[str]) -> Callable[[], Matrix]:
        """Tokenise now; the returned call runs the encoder (GIL released), e.g. in another thread."""
        return self._embedder.prepare(texts, _PREFIX)

    def encode(self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None,
               batch: int = 256) -> Matrix:
        """Vectors of many texts (training): ``progress`` gets the number done after every batch."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), batch):
            out[start : start + batch] = self.prepare(texts[start : start + batch])()
            if progress is not None:
                progress(min(start + batch, len(texts)))
        return out
