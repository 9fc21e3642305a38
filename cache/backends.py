"""Where cache entries live: in this process, or in Redis shared by every replica.

A backend stores opaque values under exact keys and keeps, per partition, the records of the
semantic index (vector + question). Eviction is oldest-first within a partition and, in process,
least-recently-used partition first, so partitions of old corpus epochs (never read again) go first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol

from cache.index import PartitionIndex

__all__ = ["CacheBackend", "MemoryBackend", "Placement"]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an entry goes: its partition, and the (tenant, collection) group and corpus epoch of it."""

    partition: str
    group: str
    epoch: str


class CacheBackend(Protocol):
    """Storage of one answer cache. Every method may raise on a dead store; the cache turns that into bypass."""

    remote: bool
    """True when calls leave the process (they are then bounded by a timeout)."""

    async def get(self, key: str) -> bytes | None: ...
    async def put(self, place: Placement, key: str, value: bytes, record: bytes | None) -> int: ...
    async def index(self, partition: str, dim: int) -> PartitionIndex: ...
    async def reclaim(self, group: str, keep_epoch: str) -> int: ...
    async def close(self) -> None: ...


@dataclass
class _Partition:
    group: str
    epoch: str
    index: PartitionIndex | None = None
    keys: OrderedDict[str, None] = field(default_factory=OrderedDict)


class MemoryBackend:
    """Entries of one process (embedded mode). Bounded per partition and in total; TTL checked on read."""

    remote = False

    def __init__(self, *, ttl_s: float, max_per_partition: int, max_total: int) -> None:
        self._ttl_s = ttl_s
        self._max_per_partition = max_per_partition
        self._max_total = max_total
        self._values: dict[str, tuple[bytes, float, str]] = {}  # key -> (value, expires_at, partition)
        self._partitions: OrderedDict[str, _Partition] = OrderedDict()
        self._records: dict[str, tuple[str, bytes]] = {}  # key -> (partition, record) until an index is built

    def __len__(self) -> int:
        return len(self._values)

    async def get(self, key: str) -> bytes | None:
        item = self._values.get(key)
        if item is None:
            return None
        value, expires_at, partition = item
        if expires_at <= time.monotonic():
            self._drop(key)
            return None
        self._partitions.move_to_end(partition)
        return value

    async def put(self, place: Placement, key: str, value: bytes, record: bytes | None) -> int:
        partition = place.partition
        part = self._partitions.setdefault(partition, _Partition(place.group, place.epoch))
        self._partitions.move_to_end(partition)
        if key in self._values:
            self._drop(key)
        self._values[key] = (value, time.monotonic() + self._ttl_s, partition)
        part.keys[key] = None
        if record is not None:
            self._records[key] = (partition, record)
            if part.index is not None:
                part.index.add_record(key, record)
        evicted = 0
        while len(part.keys) > self._max_per_partition:
            self._drop(next(iter(part.keys)))
            evicted += 1
        while len(self._values) > self._max_total:
            oldest_partition = next(iter(self._partitions.values()))
            self._drop(next(iter(oldest_partition.keys)))
            evicted += 1
        return evicted

    async def index(self, partition: str, dim: int) -> PartitionIndex:
        part = self._partitions.get(partition)
        if part is None:
            return PartitionIndex(dim)
        self._partitions.move_to_end(partition)
        if part.index is None or part.index.dim != dim:
            part.index = PartitionIndex(dim)
            for key in part.keys:
                if key in self._records:
                    part.index.add_record(key, self._records[key][1])
        self._expire(part)
        return part.index

    async def reclaim(self, group: str, keep_epoch: str) -> int:
        """Drop every partition of ``group`` made under another epoch; returns the entries dropped."""
        stale = [p for p in self._partitions.values() if p.group == group and p.epoch != keep_epoch]
        dropped = 0
        for part in stale:
            for key in list(part.keys):
                self._drop(key)
                dropped += 1
        return dropped

    async def close(self) -> None:
        self._values.clear()
        self._partitions.clear()
        self._records.clear()

    def _expire(self, part: _Partition) -> None:
        now = time.monotonic()
        while part.keys:
            key = next(iter(part.keys))
            if self._values[key][1] > now:
                break
            self._drop(key)

    def _drop(self, key: str) -> None:
        _, _, partition = self._values.pop(key)
        self._records.pop(key, None)
        part = self._partitions[partition]
        part.keys.pop(key, None)
        if part.index is not None:
            part.index.remove(key)
        if not part.keys:
            del self._partitions[partition]
