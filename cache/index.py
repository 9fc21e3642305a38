"""An in-memory nearest-neighbour index of one partition's standalone questions.

Partitions are small (bounded by ``max_entries_per_partition``), so a dense matrix product is
exact and fast; no ANN structure is needed. Records travel as bytes: the float32 vector followed
by the normalized question in UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Neighbour", "PartitionIndex", "pack_record", "unpack_record"]

Vector = npt.NDArray[np.float32]


def pack_record(vector: Vector, question: str) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes() + question.encode()


def unpack_record(record: bytes, dim: int) -> tuple[Vector, str]:
    cut = 4 * dim
    return np.frombuffer(record[:cut], dtype=np.float32), record[cut:].decode()


@dataclass(frozen=True, slots=True)
class Neighbour:
    key: str
    question: str
    similarity: float


class PartitionIndex:
    """Keys, questions and unit vectors of one partition, searched by cosine similarity."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._matrix: Vector = np.zeros((16, dim), dtype=np.float32)
        self._keys: list[str] = []
        self._questions: list[str] = []
        self._rows: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def add(self, key: str, vector: Vector, question: str) -> None:
        if vector.shape != (self.dim,):
            return  # a record of another embedder (dimension changed): ignore it
        row = self._rows.get(key)
        if row is None:
            row = len(self._keys)
            if row == self._matrix.shape[0]:
                self._matrix = np.concatenate([self._matrix, np.zeros_like(self._matrix)])
            self._keys.append(key)
            self._questions.append(question)
            self._rows[key] = row
        self._matrix[row] = vector
        self._questions[row] = question

    def add_record(self, key: str, record: bytes) -> None:
        if len(record) >= 4 * self.dim:
            vector, question = unpack_record(record, self.dim)
            self.add(key, vector, question)

    def remove(self, key: str) -> None:
        row = self._rows.pop(key, None)
        if row is None:
            return
        last = len(self._keys) - 1
        if row != last:
            moved = self._keys[last]
            self._keys[row] = moved
            self._questions[row] = self._questions[last]
            self._matrix[row] = self._matrix[last]
            self._rows[moved] = row
        self._keys.pop()
        self._questions.pop()

    def similarity(self, key: str, vector: Vector) -> float | None:
        """The cosine similarity of the entry ``key`` to a unit ``vector``; None when the entry is gone."""
        row = self._rows.get(key)
        if row is None or vector.shape != (self.dim,):
            return None
        return float(self._matrix[row] @ vector)

    def nearest(self, vector: Vector, k: int) -> list[Neighbour]:
        """Up to ``k`` entries by decreasing cosine similarity to a unit ``vector``."""
        n = len(self._keys)
        if n == 0 or vector.shape != (self.dim,):
            return []
        scores = self._matrix[:n] @ vector
        k = min(k, n)
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top])]
        return [Neighbour(self._keys[i], self._questions[i], float(scores[i])) for i in top]
