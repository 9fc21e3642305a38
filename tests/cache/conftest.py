"""Fixtures of the answer-cache tests: real Redis (shared and private), the real e5 embedder (ONNX runtime)."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from cache import AnswerCache, CacheScope, CacheSettings, question_embedder
from embeddings.protocol import Embedder

SHARED_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return question_embedder(CacheSettings())


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh key namespace on the shared Redis, deleted afterwards."""
    ns = f"ragd:test:cache:{uuid.uuid4().hex[:12]}:"
    yield ns
    client = redis.Redis.from_url(SHARED_REDIS)
    keys = list(client.scan_iter(f"{ns}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def settings(namespace: str) -> CacheSettings:
    return CacheSettings(namespace=namespace, redis_timeout_s=0.5)


@pytest.fixture(params=["memory", "redis"])
async def cache(
    request: pytest.FixtureRequest, settings: CacheSettings, embedder: Embedder
) -> AsyncIterator[AnswerCache]:
    """The same contract runs against both backends."""
    answer_cache = AnswerCache.create(settings, SHARED_REDIS if request.param == "redis" else None, embedder)
    yield answer_cache
    await answer_cache.close()


def scope(tenant: str = "acme", epoch: str = "e1", **kw: object) -> CacheScope:
    fields: dict[str, object] = {"collection": "docs", "policy_version": "p1", "model": "m1"}
    fields.update(kw)
    return CacheScope(tenant=tenant, epoch=epoch, **fields)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test alone, so the test may kill, pause or restart it."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.send_signal(18)  # SIGCONT, in case a test paused it
    server.stop()
