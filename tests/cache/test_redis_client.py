"""The Redis backend's client: an asyncio client with an asyncio retry policy (no conversion warning)."""

from __future__ import annotations

import warnings

import pytest

from cache import AnswerCache, CachedAnswer
from cache.settings import CacheSettings
from tests.cache.conftest import SHARED_REDIS, scope

pytestmark = pytest.mark.anyio


async def test_the_redis_backend_starts_without_a_warning_and_answers(namespace: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # redis-py warns when a synchronous Retry reaches the asyncio client
        cache = AnswerCache.create(CacheSettings(namespace=namespace, semantic=False), SHARED_REDIS)
    try:
        assert await cache.store(scope(), "what is rrf?", CachedAnswer(content="Fusion by rank [1].", citations=[]))
        hit = await cache.lookup_exact(scope(), "what is rrf?")
        assert hit is not None and hit.answer is not None and hit.answer.content == "Fusion by rank [1]."
    finally:
        await cache.close()
