"""Per-key rate limits (requests and tokens per minute), shared by every gateway replica via Redis.

Fixed one-minute windows keyed by the key's id (a stored key keeps its id, and its counts, when
rotated). A stored key's own ``rpm``/``tpm`` replace the gateway's limits for that key. Cache hits
count like any request. When Redis is unreachable the limiter lets the request through and counts
a degradation: a limiter outage must not take the API down.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.auth import Principal
from services.errors import RateLimitError
from services.telemetry import DEGRADATIONS, RATE_LIMITED

__all__ = ["MemoryCounters", "RateLimiter", "RedisCounters"]


class Counters(Protocol):
    async def incr(self, key: str, amount: int, ttl_s: int) -> int: ...
    async def peek(self, key: str) -> int: ...


class MemoryCounters:
    """Counters of one process (embedded mode without Redis)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[int, float]] = {}

    async def incr(self, key: str, amount: int, ttl_s: int) -> int:
        now = time.monotonic()
        value, expires = self._values.get(key, (0, now + ttl_s))
        if expires <= now:
            value, expires = 0, now + ttl_s
        self._values[key] = (value + amount, expires)
        if len(self._values) > 100_000:  # drop expired windows
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
        return value + amount

    async def peek(self, key: str) -> int:
        value, expires = self._values.get(key, (0, 0.0))
        return value if expires > time.monotonic() else 0


class RedisCounters:
    def __init__(self, redis: Redis, prefix: str = "ragd:rl:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def incr(self, key: str, amount: int, ttl_s: int) -> int:
        pipe = self._redis.pipeline()
        pipe.incrby(self._prefix + key, amount)
        pipe.expire(self._prefix + key, ttl_s, nx=True)
        value, _ = await pipe.execute()
        return int(value)

    async def peek(self, key: str) -> int:
        value = await self._redis.get(self._prefix + key)
        return int(value) if value is not None else 0


class RateLimiter:
    def __init__(self, counters: Counters, *, rpm: int, tpm: int) -> None:
        self.counters = counters
        self.rpm = rpm
        self.tpm = tpm

    @staticmethod
    def _window() -> tuple[int, int]:
        now = int(time.time())
        return now // 60, 60 - now % 60

    def limits(self, principal: Principal) -> tuple[int, int]:
        """(rpm, tpm) for this key: its own stored limits where set, else the gateway's (0: unlimited)."""
        rpm = self.rpm if principal.rpm is None else principal.rpm
        tpm = self.tpm if principal.tpm is None else principal.tpm
        return rpm, tpm

    async def admit(self, principal: Principal) -> None:
        """Count one request; raise 429 with Retry-After when over the request or token budget."""
        rpm, tpm = self.limits(principal)
        if not rpm and not tpm:
            return
        window, retry_after = self._window()
        try:
            if tpm and await self.counters.peek(f"t:{principal.key_id}:{window}") >= tpm:
                RATE_LIMITED.labels("tpm").inc()
                raise RateLimitError("Token rate limit reached for this API key.",
                                     headers={"retry-after": str(retry_after)})
            if rpm and await self.counters.incr(f"r:{principal.key_id}:{window}", 1, 120) > rpm:
                RATE_LIMITED.labels("rpm").inc()
                raise RateLimitError("Request rate limit reached for this API key.",
                                     headers={"retry-after": str(retry_after)})
        except RedisError:
            DEGRADATIONS.labels("ratelimit").inc()

    async def spend_tokens(self, principal: Principal, tokens: int) -> None:
        if not self.limits(principal)[1] or tokens <= 0:
            return
        window, _ = self._window()
        try:
            await self.counters.incr(f"t:{principal.key_id}:{window}", tokens, 120)
        except RedisError:
            DEGRADATIONS.labels("ratelimit").inc()
