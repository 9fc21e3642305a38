"""Corpus epochs: an opaque token per (tenant, collection) that changes on every corpus change.

Every cached answer is keyed by the epoch it was made under, so a bump makes all older answers
unreachable at once. Tokens are random so a store that lost its state never repeats an old one.
"""

from __future__ import annotations

import functools
import hashlib
import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.errors import DependencyUnavailableError
from services.telemetry import DEGRADATIONS

__all__ = ["MemoryEpochStore", "RedisEpochStore", "partition_id"]


@functools.lru_cache(maxsize=4096)
def partition_id(tenant: str, collection: str) -> str:
    """A stable, opaque id for a tenant's collection (used in storage keys; never reveals names)."""
    return hashlib.sha256(f"{tenant}\x00{collection}".encode()).hexdigest()[:32]


def _token() -> str:
    return secrets.token_hex(8)


class MemoryEpochStore:
    """Epochs of one process (embedded mode without Redis)."""

    def __init__(self) -> None:
        self._epochs: dict[str, str] = {}

    async def get(self, tenant: str, collection: str) -> str:
        key = partition_id(tenant, collection)
        epoch = self._epochs.get(key)
        if epoch is None:
            epoch = self._epochs[key] = _token()
        return epoch

    async def bump(self, tenant: str, collection: str) -> str:
        token = _token()
        self._epochs[partition_id(tenant, collection)] = token
        return token


class RedisEpochStore:
    """Epochs shared by every replica through Redis (``SET NX`` on first read, ``SET`` on bump).

    Redis down: ``get`` answers the last epoch this process saw (searching a known corpus goes on,
    counted as a degradation); ``bump`` fails with 503, because a change whose epoch cannot be
    bumped could let a stale cached answer be served once Redis is back.
    """

    def __init__(self, redis: Redis, *, prefix: str = "ragd:epoch:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._last: dict[str, str] = {}

    async def get(self, tenant: str, collection: str) -> str:
        pid = partition_id(tenant, collection)
        key = self._prefix + pid
        try:
            value = await self._redis.get(key)
            if value is None:
                await self._redis.set(key, _token(), nx=True)
                value = await self._redis.get(key)
        except RedisError as exc:
            DEGRADATIONS.labels("epochs").inc()
            if pid in self._last:
                return self._last[pid]
            raise DependencyUnavailableError("The corpus epoch store is unavailable.", dependency="redis") from exc
        token = value.decode() if isinstance(value, bytes) else str(value)
        self._last[pid] = token
        return token

    async def bump(self, tenant: str, collection: str) -> str:
        token = _token()
        pid = partition_id(tenant, collection)
        try:
            await self._redis.set(self._prefix + pid, token)
        except RedisError as exc:
            raise DependencyUnavailableError("The corpus epoch store is unavailable; the change was not "
                                             "applied.", dependency="redis") from exc
        self._last[pid] = token
        return token
