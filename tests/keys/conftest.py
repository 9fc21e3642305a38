"""Fixtures of the key-store tests: each store kind on real backing (the shared Redis under a private
prefix, deleted afterwards; a JSON file in a tmp dir)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from gateway.keystore import FileKeyStore, KeyRecord, KeyStore, RedisKeyStore, hash_key, new_key_id, new_secret

SHARED_REDIS = "redis://127.0.0.1:6379/0"

StoreFactory = Callable[[], KeyStore]


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the shared Redis, deleted afterwards."""
    prefix = f"ragd:test:keys:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(SHARED_REDIS)
    stale = list(client.scan_iter(f"{prefix}*"))
    if stale:
        client.delete(*stale)
    client.close()


@pytest.fixture(params=["redis", "file"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str) -> StoreFactory:
    """Opens a store; every store a test opens shares one backing, as replicas (and the CLI) do."""
    kind: str = request.param
    path = tmp_path / "keys" / "keys.json"

    def make() -> KeyStore:
        if kind == "redis":
            return RedisKeyStore.from_url(SHARED_REDIS, prefix=redis_prefix)
        return FileKeyStore(path)

    return make


def record(secret: str | None = None, **fields: object) -> tuple[str, KeyRecord]:
    """A new secret and its record (tenant ``acme``, role ``user`` unless given)."""
    secret = secret or new_secret()
    values: dict[str, object] = {"key_id": new_key_id(), "tenant": "acme", "role": "user", "name": "test",
                                 "created": time.time(), "key_sha256": hash_key(secret), **fields}
    return secret, KeyRecord(**values)  # type: ignore[arg-type]
