"""Lookup latency of the answer cache: exact hits, semantic hits (embedding included) and misses.

``python -m lab.cache.bench [--redis-url URL] [--rounds N] [--json OUT]``; numbers go to docs/cache.md.
The partition is filled with the pair set's cached questions; semantic hits are the paraphrases
the guards accept, so every timed semantic lookup really is a semantic hit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from tqdm import tqdm

from cache.answer_cache import AnswerCache
from cache.embedders import CACHE_RUNTIMES, question_embedder
from cache.entries import CachedAnswer, Outcome
from cache.keys import CacheScope
from cache.settings import CacheSettings
from lab.cache.evaluation import load_pairs

__all__ = ["bench", "main"]


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
    }


async def _timed(cache: AnswerCache, scope: CacheScope, questions: Sequence[str], want: Outcome) -> list[float]:
    timings = []
    for question in questions:
        start = time.perf_counter()
        result = await cache.lookup(scope, question)
        elapsed = time.perf_counter() - start
        if result.outcome == want:
            timings.append(elapsed)
    return timings


async def bench(redis_url: str | None, *, embedder: str = "e5-onnx", rounds: int = 3) -> dict[str, Any]:
    settings = CacheSettings(namespace=f"ragd:bench:{uuid.uuid4().hex[:8]}:", redis_timeout_s=0.5, ttl_s=600)
    cache = AnswerCache.create(settings, redis_url, question_embedder(CacheSettings(embedder=embedder)))
    scope = CacheScope("bench-tenant", "docs", uuid.uuid4().hex, "p1", "m1")
    pairs = load_pairs()
    stored = sorted({p.a for p in pairs})
    answer = CachedAnswer(content="A cached answer of typical length. " * 20, citations=[{"id": "doc-1", "n": 1}])
    for question in tqdm(stored, desc="filling the partition", unit="entry"):
        await cache.store(scope, question, answer)
    paraphrases = [p.b for p in pairs if p.hit]
    semantic = [q for q in paraphrases if (await cache.lookup(scope, q)).outcome == "semantic"]
    misses = [f"an unrelated question about topic {i}" for i in range(len(semantic))]
    result: dict[str, Any] = {
        "backend": "redis" if redis_url else "memory",
        "entries": len(stored),
        "embedder": embedder,
    }
    exact, sem, miss, embed = [], [], [], []
    model = question_embedder(CacheSettings(embedder=embedder))
    for _ in tqdm(range(rounds), desc="timing lookups", unit="round"):
        cache._vectors.clear()  # same package: time the embedding of every semantic lookup, not the memo
        exact += await _timed(cache, scope, stored, "exact")
        sem += await _timed(cache, scope, semantic, "semantic")
        cache._vectors.clear()
        miss += await _timed(cache, scope, misses, "miss")
        for question in semantic:  # the embedding alone, for the share it takes of a semantic hit
            start = time.perf_counter()
            model.embed_queries([question])
            embed.append(time.perf_counter() - start)
    result.update(
        exact_hit=_percentiles(exact),
        semantic_hit=_percentiles(sem),
        miss=_percentiles(miss),
        embed=_percentiles(embed),
    )
    await cache.close()
    if redis_url:
        await _drop_namespace(redis_url, settings.namespace)
    return result


async def _drop_namespace(redis_url: str, namespace: str) -> None:
    client = Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(f"{namespace}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.cache.bench", description=__doc__)
    parser.add_argument("--redis-url", default=None, help="Benchmark the Redis backend (default: in-process).")
    parser.add_argument("--embedder", choices=sorted(CACHE_RUNTIMES), default="e5-onnx")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = asyncio.run(bench(args.redis_url, embedder=args.embedder, rounds=args.rounds))
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
