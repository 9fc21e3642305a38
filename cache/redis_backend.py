"""The Redis backend: entries shared by every replica; each replica follows a partition's stream.

Layout under the namespace (all names are hashes; nothing reveals a tenant or a question):

* ``x:<key>``       the answer (JSON), with the TTL;
* ``p:<pid>:v``     hash key -> index record (vector + question), the partition's snapshot;
* ``p:<pid>:z``     sorted set key -> store time, for oldest-first eviction and TTL sweeps;
* ``p:<pid>:log``   stream of ``add``/``del`` events; a replica applies the events after the last
                    one it saw, and reloads the snapshot when it lags behind the capped stream.

Every partition key carries the TTL and is refreshed on store, so a partition of an old corpus
epoch, which nobody stores into again, disappears by itself; :meth:`RedisBackend.put` also sweeps
entries past their TTL out of the index.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from cache.backends import Placement
from cache.index import PartitionIndex

__all__ = ["RedisBackend"]

_NO_EVENT = "0-0"


@dataclass
class _Follower:
    index: PartitionIndex
    last_id: str = _NO_EVENT


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBackend:
    """Answers in Redis; semantic indexes rebuilt client-side and kept in step through streams."""

    remote = True

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str,
        ttl_s: int,
        max_per_partition: int,
        max_indexed: int = 50_000,
        max_followed: int = 256,
        load_wait_s: float = 0.025,
        load_timeout_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._ns = namespace
        self._ttl_s = ttl_s
        self._max_per_partition = max_per_partition
        self._max_followed = max_followed
        self._max_indexed = max_indexed
        self._load_wait_s = load_wait_s
        self._load_timeout_s = load_timeout_s
        self._loading: dict[str, asyncio.Task[_Follower]] = {}
        self._followers: OrderedDict[str, _Follower] = OrderedDict()

    def _entry(self, key: str) -> str:
        return f"{self._ns}x:{key}"

    def _part(self, partition: str, what: str) -> str:
        return f"{self._ns}p:{partition}:{what}"

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self._entry(key))
        return value if isinstance(value, bytes | None) else _text(value).encode()

    async def put(self, place: Placement, key: str, value: bytes, record: bytes | None) -> int:
        partition = place.partition
        v, z, log = (self._part(partition, w) for w in ("v", "z", "log"))
        group = f"{self._ns}g:{place.group}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._entry(key), value, ex=self._ttl_s)
        pipe.hset(group, partition, place.epoch)
        pipe.expire(group, self._ttl_s)
        pipe.zadd(z, {key: time.time()})
        if record is not None:
            pipe.hset(v, key, record)
            pipe.xadd(log, {"op": "add", "k": key, "r": record}, maxlen=2 * self._max_per_partition, approximate=False)
        for name in (v, z, log):
            pipe.expire(name, self._ttl_s)
        await pipe.execute()
        return await self._evict(partition)

    async def _evict(self, partition: str) -> int:
        """Drop entries past the per-partition bound (counted) and past their TTL (not counted)."""
        z = self._part(partition, "z")
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(z)
        pipe.zrangebyscore(z, "-inf", time.time() - self._ttl_s)
        size, expired = await pipe.execute()
        over = max(0, int(size) - len(expired) - self._max_per_partition)
        keys = [_text(k) for k in expired]
        if over:
            keys += [_text(k) for k in await self._redis.zrange(z, len(expired), len(expired) + over - 1)]
        if keys:
            await self._remove(partition, keys)
        return over

    async def _remove(self, partition: str, keys: list[str]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(*(self._entry(k) for k in keys))
        pipe.hdel(self._part(partition, "v"), *keys)
        pipe.zrem(self._part(partition, "z"), *keys)
        for key in keys:
            pipe.xadd(
                self._part(partition, "log"),
                {"op": "del", "k": key},
                maxlen=2 * self._max_per_partition,
                approximate=False,
            )
        await pipe.execute()

    async def reclaim(self, group: str, keep_epoch: str) -> int:
        """Delete every partition of ``group`` stored under another epoch; returns the entries deleted."""
        group_key = f"{self._ns}g:{group}"
        epochs = await self._redis.hgetall(group_key)
        stale = [_text(p) for p, e in epochs.items() if _text(e) != keep_epoch]
        dropped = 0
        for partition in stale:
            keys = [_text(k) for k in await self._redis.zrange(self._part(partition, "z"), 0, -1)]
            pipe = self._redis.pipeline(transaction=True)
            if keys:
                pipe.delete(*(self._entry(k) for k in keys))
            pipe.delete(*(self._part(partition, w) for w in ("v", "z", "log")))
            pipe.hdel(group_key, partition)
            await pipe.execute()
            self._followers.pop(partition, None)
            dropped += len(keys)
        return dropped

    async def index(self, partition: str, dim: int) -> PartitionIndex:
        """The partition's index, brought up to date. A partition this replica does not follow yet is
        loaded in the background; a lookup waits ``load_wait_s`` for it, then answers from an empty index."""
        follower = self._followers.get(partition)
        if follower is None or follower.index.dim != dim:
            loaded = await self._loaded(partition, dim)
            if loaded is None:
                return PartitionIndex(dim)
            follower = loaded
        else:
            follower = await self._catch_up(partition, follower)
        self._keep(partition, follower)
        return follower.index

    async def _loaded(self, partition: str, dim: int) -> _Follower | None:
        task = self._loading.get(partition)
        if task is None:
            task = asyncio.create_task(asyncio.wait_for(self._load(partition, dim), self._load_timeout_s))
            task.add_done_callback(lambda done: self._finish_load(partition, dim, done))
            self._loading[partition] = task
        done, _ = await asyncio.wait({task}, timeout=self._load_wait_s)
        return task.result() if done and not task.cancelled() and task.exception() is None else None

    def _finish_load(self, partition: str, dim: int, task: asyncio.Task[_Follower]) -> None:
        self._loading.pop(partition, None)
        if not task.cancelled() and task.exception() is None and partition not in self._followers:
            self._keep(partition, task.result())

    def _keep(self, partition: str, follower: _Follower) -> None:
        """Follow at most ``max_followed`` partitions and ``max_indexed`` entries (least recently used go)."""
        self._followers[partition] = follower
        self._followers.move_to_end(partition)
        while len(self._followers) > 1 and (
            len(self._followers) > self._max_followed
            or sum(len(f.index) for f in self._followers.values()) > self._max_indexed
        ):
            self._followers.popitem(last=False)

    async def _catch_up(self, partition: str, follower: _Follower) -> _Follower:
        log = self._part(partition, "log")
        pipe = self._redis.pipeline(transaction=False)
        pipe.xrange(log, "-", "+", count=1)
        pipe.xrange(log, f"({follower.last_id}", "+")
        first, events = await pipe.execute()
        if not first:
            return _Follower(PartitionIndex(follower.index.dim))  # the partition expired
        if _stream_id(_text(first[0][0])) > _stream_id(follower.last_id):
            return await self._load(partition, follower.index.dim)  # events we never saw were trimmed: reload
        for event_id, fields in events:
            self._apply(follower.index, fields)
            follower.last_id = _text(event_id)
        return follower

    async def _load(self, partition: str, dim: int) -> _Follower:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(self._part(partition, "v"))
        pipe.xrevrange(self._part(partition, "log"), "+", "-", count=1)
        records, last = await pipe.execute()
        index = PartitionIndex(dim)
        for key, record in records.items():
            index.add_record(_text(key), record)
        return _Follower(index, _text(last[0][0]) if last else _NO_EVENT)

    @staticmethod
    def _apply(index: PartitionIndex, fields: dict[bytes, bytes]) -> None:
        key = _text(fields.get(b"k", b""))
        if fields.get(b"op") == b"add":
            index.add_record(key, fields.get(b"r", b""))
        else:
            index.remove(key)

    async def close(self) -> None:
        for task in list(self._loading.values()):
            task.cancel()
        self._followers.clear()
        await self._redis.aclose()


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)
