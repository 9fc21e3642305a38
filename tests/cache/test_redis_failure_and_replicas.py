"""Redis-only behaviour: replicas follow each other's semantic entries; a dead or stalled Redis is a bypass."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from cache import AnswerCache, CachedAnswer, CacheSettings
from cache.redis_backend import RedisBackend
from embeddings.protocol import Embedder
from tests.cache.conftest import SHARED_REDIS, PrivateRedis, scope

pytestmark = pytest.mark.anyio

ANSWER = CachedAnswer(content="Open Settings > Account > Delete.", citations=[{"id": "help-3"}])
STORED = "How do I delete my account permanently?"
PARAPHRASE = "How can I permanently delete my account?"


def _degradations() -> float:
    return REGISTRY.get_sample_value("ragd_degradations_total", {"dependency": "cache"}) or 0.0


async def test_a_second_replica_sees_semantic_entries_of_the_first(
    settings: CacheSettings, embedder: Embedder
) -> None:
    first = AnswerCache.create(settings, SHARED_REDIS, embedder)
    second = AnswerCache.create(settings, SHARED_REDIS, embedder)
    assert (await second.lookup(scope(), PARAPHRASE)).outcome == "miss"  # second now follows the partition
    await first.store(scope(), STORED, ANSWER)
    hit = await second.lookup(scope(), PARAPHRASE)
    assert hit.outcome == "semantic" and hit.answer is not None and hit.answer.content == ANSWER.content
    third = AnswerCache.create(settings, SHARED_REDIS, embedder)  # a replica started later loads the snapshot
    assert (await third.lookup(scope(), PARAPHRASE)).outcome == "semantic"
    for replica in (first, second, third):
        await replica.close()


async def test_evictions_by_one_replica_reach_the_others(namespace: str, embedder: Embedder) -> None:
    settings = CacheSettings(namespace=namespace, max_entries_per_partition=1, redis_timeout_s=0.5)
    first = AnswerCache.create(settings, SHARED_REDIS, embedder)
    second = AnswerCache.create(settings, SHARED_REDIS, embedder)
    await first.store(scope(), STORED, ANSWER)
    assert (await second.lookup(scope(), PARAPHRASE)).outcome == "semantic"
    await first.store(scope(), "Which items can be recycled?", ANSWER)  # evicts the first entry
    assert (await second.lookup(scope(), PARAPHRASE)).outcome == "miss"
    await first.close()
    await second.close()


async def test_a_replica_that_fell_behind_the_capped_stream_reloads(
    namespace: str, embedder: Embedder
) -> None:
    # two entries per partition: the stream is capped at four events
    settings = CacheSettings(namespace=namespace, max_entries_per_partition=2, redis_timeout_s=0.5)
    first = AnswerCache.create(settings, SHARED_REDIS, embedder)
    second = AnswerCache.create(settings, SHARED_REDIS, embedder)
    await first.store(scope(), "Which items can be recycled?", ANSWER)
    assert (await second.lookup(scope(), "Which items can be recycled")).outcome == "exact"
    assert (await second.lookup(scope(), PARAPHRASE)).outcome == "miss"  # follows the partition from here
    for question in ("What is photosynthesis?", "Who painted the Mona Lisa?", "Why is the sky blue?", STORED):
        await first.store(scope(), question, ANSWER)  # 4 adds + 3 evictions: events the stream no longer holds
    assert (await second.lookup(scope(), PARAPHRASE)).outcome == "semantic"
    assert (await second.lookup(scope(), "Can you explain what photosynthesis is?")).outcome == "miss"  # evicted
    await first.close()
    await second.close()


async def test_killing_redis_mid_run_bypasses_without_raising(
    private_redis: PrivateRedis, embedder: Embedder
) -> None:
    cache = AnswerCache.create(CacheSettings(redis_timeout_s=0.2), private_redis.url, embedder)
    await cache.store(scope(), STORED, ANSWER)
    assert (await cache.lookup(scope(), STORED)).outcome == "exact"
    before = _degradations()
    private_redis.stop()
    outcomes = []
    for question in (STORED, PARAPHRASE, "anything else"):
        start = time.perf_counter()
        outcomes.append((await cache.lookup(scope(), question)).outcome)
        assert time.perf_counter() - start < 0.5
    assert outcomes == ["bypass"] * 3
    assert not await cache.store(scope(), "new question", ANSWER)
    assert await cache.reclaim("acme", "docs", "e2") == 0
    assert _degradations() >= before + 3
    await cache.close()


async def test_a_stalled_redis_is_a_bounded_bypass_and_recovery_follows(
    private_redis: PrivateRedis, embedder: Embedder
) -> None:
    settings = CacheSettings(redis_timeout_s=0.2, breaker_cooldown_s=0.2)
    cache = AnswerCache.create(settings, private_redis.url, embedder)
    await cache.store(scope(), STORED, ANSWER)
    assert private_redis.process is not None
    os.kill(private_redis.process.pid, signal.SIGSTOP)
    try:
        start = time.perf_counter()
        assert (await cache.lookup(scope(), STORED)).outcome == "bypass"
        assert time.perf_counter() - start < 0.6
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)
    outcome = "bypass"
    for _ in range(20):  # once the breaker's cooldown has passed, Redis answers again
        await asyncio.sleep(0.1)
        if (outcome := (await cache.lookup(scope(), STORED)).outcome) != "bypass":
            break
    assert outcome == "exact"
    await cache.close()


async def test_redis_down_from_the_start_is_a_bypass(embedder: Embedder) -> None:
    server = PrivateRedis()  # never started: nothing listens on its port
    cache = AnswerCache.create(CacheSettings(), server.url, embedder)
    assert (await cache.lookup(scope(), STORED)).outcome == "bypass"
    assert not await cache.store(scope(), STORED, ANSWER)
    assert (await cache.ready())["store"] is False  # bypassed until the breaker's cooldown ends
    await cache.close()


async def test_a_partition_still_loading_is_a_miss_not_a_bypass(
    settings: CacheSettings, embedder: Embedder
) -> None:
    first = AnswerCache.create(settings, SHARED_REDIS, embedder)
    await first.store(scope(), STORED, ANSWER)
    backend = RedisBackend(
        Redis.from_url(SHARED_REDIS), namespace=settings.namespace, ttl_s=60, max_per_partition=10, load_wait_s=0.0
    )
    late = AnswerCache(settings, backend, embedder)
    assert (await late.lookup(scope(), PARAPHRASE)).outcome == "miss"  # the snapshot loads in the background
    outcome = "miss"
    for _ in range(50):
        await asyncio.sleep(0.02)
        if (outcome := (await late.lookup(scope(), PARAPHRASE)).outcome) == "semantic":
            break
    assert outcome == "semantic"
    await first.close()
    await late.close()


async def test_concurrent_lookups_on_a_new_replica_all_answer(
    settings: CacheSettings, embedder: Embedder
) -> None:
    first = AnswerCache.create(settings, SHARED_REDIS, embedder)
    await first.store(scope(), STORED, ANSWER)
    second = AnswerCache.create(settings, SHARED_REDIS, embedder)
    results = await asyncio.gather(*(second.lookup(scope(), q) for q in [STORED, PARAPHRASE] * 10))
    assert {r.outcome for r in results[::2]} == {"exact"}
    assert {r.outcome for r in results[1::2]} <= {"semantic", "miss"}  # miss while the snapshot loads
    assert (await second.lookup(scope(), PARAPHRASE)).outcome == "semantic"
    await first.close()
    await second.close()
