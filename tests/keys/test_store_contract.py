"""The contract every key store keeps (Redis and file, the same tests): records by hash and by id,
conflicts, revoke, rotate, last-used, one backing seen by several stores (replicas, the CLI), a
restart keeps everything, and no plain key is ever written."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from gateway.keystore import FileKeyStore, KeyStoreUnavailableError, RedisKeyStore, hash_key, new_secret
from services.errors import ConflictError
from tests.keys.conftest import SHARED_REDIS, StoreFactory, record


def test_a_record_is_found_by_hash_and_by_id_and_listed(make_store: StoreFactory) -> None:
    async def run() -> None:
        store = make_store()
        _, plain = record()
        _, limited = record(tenant="beta", role="admin", expires_at=time.time() + 3600, rpm=5, tpm=1000,
                            created=plain.created + 1)
        await store.add(plain)
        await store.add(limited)
        assert await store.find(plain.key_sha256) == plain
        assert await store.find(limited.key_sha256) == limited  # optional fields round-trip
        assert await store.get(limited.key_id) == limited
        assert await store.find(hash_key("rk-not-stored")) is None
        assert await store.get("key-0000000000000000") is None
        assert await store.list() == [plain, limited]  # oldest first
        await store.aclose()

    asyncio.run(run())


def test_the_same_id_or_secret_cannot_be_added_twice(make_store: StoreFactory) -> None:
    async def run() -> None:
        store = make_store()
        secret, first = record()
        await store.add(first)
        with pytest.raises(ConflictError):
            await store.add(record(secret)[1])  # same secret, another id
        with pytest.raises(ConflictError):
            await store.add(replace(record()[1], key_id=first.key_id))  # same id, another secret
        assert await store.list() == [first]
        await store.aclose()

    asyncio.run(run())


def test_revoke_marks_the_record_and_keeps_it(make_store: StoreFactory) -> None:
    async def run() -> None:
        store = make_store()
        _, rec = record()
        _, other = record()
        await store.add(rec)
        await store.add(other)
        revoked = await store.revoke(rec.key_id)
        assert revoked == replace(rec, revoked=True)
        assert await store.find(rec.key_sha256) == revoked
        assert await store.revoke(rec.key_id) == revoked  # idempotent
        assert await store.revoke("key-ffffffffffffffff") is None
        assert await store.find(other.key_sha256) == other  # the control stays active
        await store.aclose()

    asyncio.run(run())


def test_rotate_moves_the_record_to_the_new_hash(make_store: StoreFactory) -> None:
    async def run() -> None:
        store = make_store()
        _, rec = record(rpm=7)
        _, other = record()
        await store.add(rec)
        await store.add(other)
        new_hash = hash_key(new_secret())
        rotated = await store.rotate(rec.key_id, new_hash)
        assert rotated == replace(rec, key_sha256=new_hash)
        assert await store.find(new_hash) == rotated
        assert await store.find(rec.key_sha256) is None  # the old secret is gone
        with pytest.raises(ConflictError):
            await store.rotate(rec.key_id, other.key_sha256)  # another key's secret
        assert await store.rotate("key-ffffffffffffffff", hash_key(new_secret())) is None
        assert await store.find(other.key_sha256) == other
        await store.aclose()

    asyncio.run(run())


def test_touch_sets_last_used_and_creates_nothing(make_store: StoreFactory) -> None:
    async def run() -> None:
        store = make_store()
        _, rec = record()
        await store.add(rec)
        await store.touch(rec.key_id, 1_700_000_123.5)
        found = await store.find(rec.key_sha256)
        assert found is not None and found.last_used == 1_700_000_123.5
        await store.touch("key-eeeeeeeeeeeeeeee", 1.0)
        assert await store.get("key-eeeeeeeeeeeeeeee") is None
        assert [r.key_id for r in await store.list()] == [rec.key_id]
        await store.aclose()

    asyncio.run(run())


def test_every_store_on_one_backing_sees_the_others_changes(make_store: StoreFactory) -> None:
    async def run() -> None:
        replica_a, replica_b = make_store(), make_store()
        _, rec = record()
        assert await replica_b.find(rec.key_sha256) is None
        await replica_a.add(rec)
        assert await replica_b.find(rec.key_sha256) == rec
        await replica_b.revoke(rec.key_id)
        found = await replica_a.find(rec.key_sha256)
        assert found is not None and found.revoked
        await replica_a.aclose()
        await replica_b.aclose()

    asyncio.run(run())


def test_a_reopened_store_keeps_its_keys(make_store: StoreFactory) -> None:
    _, rec = record()

    async def write() -> None:
        store = make_store()
        await store.add(rec)
        await store.revoke(rec.key_id)
        await store.aclose()

    async def read() -> None:
        store = make_store()
        assert await store.find(rec.key_sha256) == replace(rec, revoked=True)
        await store.aclose()

    asyncio.run(write())
    asyncio.run(read())


def test_concurrent_changes_from_two_stores_are_all_kept(make_store: StoreFactory) -> None:
    async def run() -> None:
        stores = [make_store(), make_store()]
        records = [record()[1] for _ in range(20)]
        await asyncio.gather(*(stores[i % 2].add(r) for i, r in enumerate(records)))
        assert {r.key_id for r in await stores[0].list()} == {r.key_id for r in records}
        for store in stores:
            await store.aclose()

    asyncio.run(run())


def test_no_plain_key_is_stored(make_store: StoreFactory, tmp_path: Path, redis_prefix: str) -> None:
    secret, rec = record()

    async def run() -> None:
        store = make_store()
        await store.add(rec)
        await store.touch(rec.key_id, time.time())
        await store.aclose()

    asyncio.run(run())
    if isinstance(make_store(), RedisKeyStore):
        client = redis.Redis.from_url(SHARED_REDIS)
        dump = b"".join(k + repr(client.dump(k)).encode() for k in client.scan_iter(f"{redis_prefix}*"))
        client.close()
    else:
        dump = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert rec.key_sha256.encode() in dump  # the control: the record is there
    assert secret.encode() not in dump


def test_the_file_store_writes_whole_files_only_for_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keys.json"

    async def run() -> None:
        store = FileKeyStore(path)
        await store.add(record()[1])
        await store.add(record()[1])

    asyncio.run(run())
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(json.loads(path.read_text())["keys"]) == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["keys.json", "keys.json.lock"]  # no temp file left


def test_a_broken_key_file_is_an_unavailable_store(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    for broken in ("{not json", '{"keys": [{"key_id": "k"}]}', '{"keys": 3}', "[]"):
        path.write_text(broken)
        with pytest.raises(KeyStoreUnavailableError):
            asyncio.run(FileKeyStore(path).find(hash_key("rk-anything")))
    path.write_text('{"version": 1, "keys": []}')  # the control: a valid file answers
    assert asyncio.run(FileKeyStore(path).find(hash_key("rk-anything"))) is None


def test_an_unreachable_redis_is_an_unavailable_store(redis_prefix: str) -> None:
    async def run(url: str) -> object:
        store = RedisKeyStore.from_url(url, prefix=redis_prefix, timeout_s=0.3)
        try:
            return await store.find(hash_key("rk-anything"))
        finally:
            await store.aclose()

    with pytest.raises(KeyStoreUnavailableError):
        asyncio.run(run("redis://127.0.0.1:1/0"))
    assert asyncio.run(run(SHARED_REDIS)) is None  # the control: a reachable Redis answers
