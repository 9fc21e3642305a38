"""The EpochStore contract, run against both implementations: the in-process store and Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Iterator

import pytest
from redis.asyncio import Redis

from services.epochs import MemoryEpochStore, RedisEpochStore
from services.protocols import EpochStore

REDIS_URL = "redis://127.0.0.1:6379/0"
Factory = Callable[[], EpochStore]


def _redis_answers() -> bool:
    async def ping() -> bool:
        client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        try:
            return bool(await client.ping())
        except Exception:
            return False
        finally:
            await client.aclose()

    return asyncio.run(ping())


@pytest.fixture(params=["memory", "redis"])
def store_factory(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """A factory of stores that share state (two Redis stores are two replicas of one deployment)."""
    if request.param == "memory":
        shared = MemoryEpochStore()
        yield lambda: shared
        return
    if not _redis_answers():
        pytest.skip("no Redis at 127.0.0.1:6379 (make redis)")
    prefix = f"ragd:test-epoch:{secrets.token_hex(4)}:"
    yield lambda: RedisEpochStore(Redis.from_url(REDIS_URL), prefix=prefix)


def _run(factory: Factory, body: Callable[[Factory], Awaitable[None]]) -> None:
    async def main() -> None:
        await body(factory)

    asyncio.run(main())


def test_both_implement_the_protocol() -> None:
    assert isinstance(MemoryEpochStore(), EpochStore)
    assert isinstance(RedisEpochStore(Redis.from_url(REDIS_URL)), EpochStore)


def test_get_is_stable_until_a_bump(store_factory: Factory) -> None:
    async def body(factory: Factory) -> None:
        store = factory()
        first = await store.get("t1", "docs")
        assert first and await store.get("t1", "docs") == first
        bumped = await store.bump("t1", "docs")
        assert bumped != first
        assert await store.get("t1", "docs") == bumped

    _run(store_factory, body)


def test_partitions_are_independent(store_factory: Factory) -> None:
    async def body(factory: Factory) -> None:
        store = factory()
        a, b, c = (await store.get("t1", "docs"), await store.get("t2", "docs"), await store.get("t1", "other"))
        assert len({a, b, c}) == 3
        await store.bump("t1", "docs")
        assert await store.get("t2", "docs") == b
        assert await store.get("t1", "other") == c

    _run(store_factory, body)


def test_a_bump_is_seen_by_every_replica(store_factory: Factory) -> None:
    async def body(factory: Factory) -> None:
        one, two = factory(), factory()
        assert await one.get("t1", "docs") == await two.get("t1", "docs")
        bumped = await one.bump("t1", "docs")
        assert await two.get("t1", "docs") == bumped

    _run(store_factory, body)
