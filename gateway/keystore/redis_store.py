"""Stored API keys in Redis, shared by every gateway replica and by ``ragd keys``.

Layout under a prefix (``ragd:keys:`` by default):

- ``{prefix}id:{key_id}``: a hash with the record's fields (``key_sha256`` included, the key never);
- ``{prefix}sha:{key_sha256}``: the key id, so authentication is one script call, never a scan;
- ``{prefix}ids``: the set of key ids, for listing.

Every change is one Lua script, so two replicas (or a replica and the CLI) never see half of one.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from gateway.keystore.records import KeyRecord, KeyStoreUnavailableError
from services.errors import ConflictError

__all__ = ["RedisKeyStore"]

_FIND = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('HGETALL', ARGV[1] .. id)
"""
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'last_used', ARGV[1]) end
return 1
"""
_REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'revoked', '1')
return redis.call('HGETALL', KEYS[1])
"""
_ROTATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.error_reply('ragd-conflict') end
local old = redis.call('HGET', KEYS[1], 'key_sha256')
if old then redis.call('DEL', ARGV[1] .. old) end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'key_sha256', ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""

_FLOATS = ("created", "expires_at", "last_used")
_INTS = ("rpm", "tpm")


def _to_fields(record: KeyRecord) -> dict[str, str]:
    """The record as a Redis hash: ``None`` is an absent field, ``revoked`` is ``0``/``1``."""
    fields: dict[str, str] = {}
    for name, value in record.to_json().items():
        if value is None:
            continue
        fields[name] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return fields


def _from_reply(reply: Any) -> KeyRecord | None:
    """A record from ``HGETALL``'s flat reply (``None`` when empty: the record is gone)."""
    if not reply:
        return None
    flat = [v.decode() if isinstance(v, bytes) else str(v) for v in reply]
    fields: dict[str, Any] = dict(zip(flat[::2], flat[1::2], strict=True))
    for name in _FLOATS:
        if name in fields:
            fields[name] = float(fields[name])
    for name in _INTS:
        if name in fields:
            fields[name] = int(fields[name])
    fields["revoked"] = fields.get("revoked") == "1"
    return KeyRecord.from_json(fields)


class RedisKeyStore:
    """A :class:`~gateway.keystore.records.KeyStore` in Redis."""

    def __init__(self, redis: Redis, *, prefix: str = "ragd:keys:", owns_client: bool = False) -> None:
        self._redis = redis
        self._prefix = prefix
        self._owns_client = owns_client
        self._find = redis.register_script(_FIND)
        self._add = redis.register_script(_ADD)
        self._touch = redis.register_script(_TOUCH)
        self._revoke = redis.register_script(_REVOKE)
        self._rotate = redis.register_script(_ROTATE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str, timeout_s: float = 0.5) -> RedisKeyStore:
        client = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, prefix=prefix, owns_client=True)

    def _id_key(self, key_id: str) -> str:
        return f"{self._prefix}id:{key_id}"

    def _sha_key(self, key_sha256: str) -> str:
        return f"{self._prefix}sha:{key_sha256}"

    async def find(self, key_sha256: str) -> KeyRecord | None:
        try:
            reply = await self._find(keys=[self._sha_key(key_sha256)], args=[self._prefix + "id:"])
        except RedisError as exc:
            raise KeyStoreUnavailableError() from exc
        record = _from_reply(reply)
        # the index and the record change together in every script; a hand-edited store may disagree
        return record if record is not None and record.key_sha256 == key_sha256 else None

    async def touch(self, key_id: str, at: float) -> None:
        try:
            await self._touch(keys=[self._id_key(key_id)], args=[str(at)])
        except RedisError as exc:
            raise KeyStoreUnavailableError() from exc

    async def add(self, record: KeyRecord) -> None:
        flat = [item for pair in _to_fields(record).items() for item in pair]
        try:
            added = await self._add(keys=[self._sha_key(record.key_sha256), self._id_key(record.key_id),
                                          self._prefix + "ids"], args=[record.key_id, *flat])
        except RedisError as exc:
            raise KeyStoreUnavailableError() from exc
        if int(added) != 1:
            raise ConflictError("A key with this id or secret is already stored.")

    async def get(self, key_id: str) -> KeyRecord | None:
        try:
            return _from_reply(await self._hgetall(self._id_key(key_id)))
        except RedisError as exc:
            raise KeyStoreUnavailableError() from exc

    async def _hgetall(self, key: str) -> Any:
        # HGETALL answers a dict in redis-py; flatten it to the scripts' reply shape
        mapping = await cast(Any, self._redis.hgetall(key))
        return [item for pair in mapping.items() for item in pair]

    async def list(self) -> list[KeyRecord]:
        try:
            ids = sorted(v.decode() if isinstance(v, bytes) else str(v)
                         for v in await cast(Any, self._redis.smembers(self._prefix + "ids")))
            pipe = self._redis.pipeline(transaction=False)
            for key_id in ids:
                pipe.hgetall(self._id_key(key_id))
            replies = await pipe.execute()
        except RedisError as exc:
            raise KeyStoreUnavailableError() from exc
        records = [_from_reply([item for pair in r.items() for item in pair]) for r in replies]
        return sorted((r for r in records if r is not None), key=lambda r: (r.created, r.key_id))

    async def revoke(self, key_id: str) -> KeyRecord | None:
        try:
            return _from_reply(await self._revoke(keys=[self._id_key(key_id)]))
        except RedisError as exc:
            raise KeyStoreUnavailableError() from exc

    async def rotate(self, key_id: str, key_sha256: str) -> KeyRecord | None:
        try:
            reply = await self._rotate(keys=[self._id_key(key_id), self._sha_key(key_sha256)],
                                       args=[self._prefix + "sha:", key_sha256, key_id])
        except ResponseError as exc:
            if "ragd-conflict" in str(exc):
                raise ConflictError("A key with this secret is already stored.") from exc
            raise KeyStoreUnavailableError() from exc
        except RedisError as exc:
            raise KeyStoreUnavailableError() from exc
        return _from_reply(reply)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
