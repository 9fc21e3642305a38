"""API keys -> (tenant, role). Keys are kept only as SHA-256 hashes.

Two sources of keys, looked up side by side: the configured ones (keys file, inline setting), held
in memory, and the stored ones (:mod:`gateway.keystore`), read from the store every replica shares.
Both are found by their hash in one dictionary or store read, never by a scan. A dictionary lookup
by SHA-256 leaks nothing a caller could use: it cannot choose a key whose hash shares a prefix
with a real one.

The mode is fixed when the gateway starts (:func:`resolve_mode`) and no request changes it: in open
mode every request is the default tenant, and admin routes answer 403 saying how to configure keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from gateway.audit import AuthFailure, auth_failed
from gateway.keystore.records import KeyLookup, KeyRecord, KeyStore, KeyStoreUnavailableError, Role, hash_key
from services.errors import AuthenticationError, PermissionDeniedError

__all__ = ["OPEN_MODE_MESSAGE", "AuthConfigError", "Authenticator", "KeyRing", "Mode", "Principal", "hash_key",
           "resolve_mode"]

Mode = Literal["open", "keys"]

_log = logging.getLogger("ragd.gateway")

OPEN_KEY_ID = "open"
OPEN_MODE_MESSAGE = (
    "Admin routes are off in open mode (no API keys configured; loopback only, one default tenant). "
    "Create an admin key on the gateway's host with 'ragd keys create --tenant ops --role admin' (it writes to "
    "the same store: RAGD_REDIS_URL, or RAGD_DATA_DIR without Redis), then restart the gateway with "
    "RAGD_GATEWAY_AUTH=keys; or configure keys with RAGD_GATEWAY_API_KEYS_FILE.")


class AuthConfigError(RuntimeError):
    """The auth settings contradict each other or cannot be applied; the gateway does not start."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and a role. ``key_id`` is safe to log; ``rpm``/``tpm`` are the key's own
    limits (``None``: the gateway's)."""

    tenant: str
    role: Role
    key_id: str
    rpm: int | None = None
    tpm: int | None = None

    def require(self, role: Role) -> None:
        if role == "admin" and self.role != "admin":
            if self.key_id == OPEN_KEY_ID:
                raise PermissionDeniedError(OPEN_MODE_MESSAGE, code="open_mode")
            raise PermissionDeniedError("This API key may not use this route.")


class KeyEntry(BaseModel):
    key: str | None = Field(None, min_length=16)
    key_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    role: Role = "user"

    @model_validator(mode="after")
    def _one_key(self) -> KeyEntry:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("each API key entry needs exactly one of 'key' or 'key_sha256'")
        return self

    def digest(self) -> str:
        return self.key_sha256 or hash_key(self.key or "")


class KeyRing:
    """The configured keys (keys file, inline setting), by hash."""

    def __init__(self, entries: list[KeyEntry]) -> None:
        self._by_hash: dict[str, Principal] = {
            e.digest(): Principal(tenant=e.tenant, role=e.role, key_id=e.digest()[:8]) for e in entries}

    @classmethod
    def load(cls, *, file: Path | None, inline: str) -> KeyRing:
        entries: list[KeyEntry] = []
        if file is not None:
            text = file.read_text(encoding="utf-8")
            raw = yaml.safe_load(text) if file.suffix in (".yaml", ".yml") else json.loads(text)
            items = raw.get("keys", []) if isinstance(raw, dict) else raw
            entries.extend(KeyEntry.model_validate(item) for item in items)
        for spec in filter(None, (s.strip() for s in inline.split(","))):
            key, tenant, *role = spec.split(":")
            entries.append(KeyEntry(key=key, tenant=tenant, role=role[0] if role else "user"))
        return cls(entries)

    def __len__(self) -> int:
        return len(self._by_hash)

    def lookup(self, digest: str) -> Principal | None:
        return self._by_hash.get(digest)


async def resolve_mode(setting: str, ring: KeyRing, store: KeyStore | None, *, now: float | None = None,
                       attempts: int = 4, backoff_s: float = 0.5) -> Mode:
    """The auth mode for this run: ``open``/``keys`` as set; ``auto``: keys when any key is configured
    or an active one is stored, else open. ``auto`` with a store unreadable after ``attempts`` tries
    (backing off from ``backoff_s``) refuses to guess."""
    if setting == "open":
        if len(ring):
            raise AuthConfigError("RAGD_GATEWAY_AUTH=open, but API keys are configured (keys file or inline keys).")
        return "open"
    if setting == "keys" or len(ring):
        return "keys"
    if store is None:
        return "open"
    for attempt in range(attempts):
        try:
            stored = await store.list()
            break
        except KeyStoreUnavailableError as exc:
            if attempt == attempts - 1:
                raise AuthConfigError("RAGD_GATEWAY_AUTH=auto cannot read the API key store to choose the auth "
                                      "mode; make it reachable or set RAGD_GATEWAY_AUTH=open or keys.") from exc
            await asyncio.sleep(backoff_s * 2**attempt)
    at = time.time() if now is None else now
    return "keys" if any(r.state(at) == "active" for r in stored) else "open"


class _LookupCache:
    """Stored-key lookups of the last ``ttl_s`` seconds (at most 1 s, so a revocation reaches every
    replica within it); bounded, cleared whole when full."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, KeyRecord | None]] = {}

    def get(self, digest: str) -> tuple[bool, KeyRecord | None]:
        hit = self._entries.get(digest)
        if hit is None or hit[0] <= time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, digest: str, record: KeyRecord | None) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + self.ttl_s, record)

    def clear(self) -> None:
        self._entries.clear()


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal`, or refuses it (401; 503 when only
    the key store could say and cannot be reached). Refusals are audited and counted."""

    def __init__(self, ring: KeyRing, store: KeyLookup | None, *, mode: Mode, default_tenant: str = "default",
                 cache_ttl_s: float = 0.5, touch_interval_s: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.mode = mode
        self._ring = ring
        self._store = store
        self._open = Principal(tenant=default_tenant, role="user", key_id=OPEN_KEY_ID)
        self._cache = _LookupCache(cache_ttl_s)
        self._touch_interval_s = touch_interval_s
        self._touched: dict[str, float] = {}
        self._clock = clock

    @property
    def is_open(self) -> bool:
        return self.mode == "open"

    def forget(self) -> None:
        """Drop cached lookups (this replica changed a key: it must see the change at once)."""
        self._cache.clear()

    async def authenticate(self, authorization: str | None, *, audit: bool = True) -> Principal:
        """The caller; ``audit=False`` for a first look whose refusal the route repeats (the fast path)."""
        if self.mode == "open":
            return self._open
        if not authorization or authorization[:7].lower() != "bearer " or not authorization[7:].strip():
            raise _refuse("missing", "Missing API key: send 'Authorization: Bearer <key>'.", audit=audit)
        digest = hash_key(authorization[7:].strip())
        principal = self._ring.lookup(digest)
        if principal is not None:
            return principal
        record = await self._stored(digest, audit=audit)
        now = self._clock()
        state = record.state(now)
        if state != "active":
            message = "This API key has expired." if state == "expired" else "This API key has been revoked."
            raise _refuse(state, message, audit=audit, key_id=record.key_id)
        await self._touch(record, now)
        return Principal(tenant=record.tenant, role=record.role, key_id=record.key_id, rpm=record.rpm,
                         tpm=record.tpm)

    async def _stored(self, digest: str, *, audit: bool) -> KeyRecord:
        known, record = self._cache.get(digest)
        if not known and self._store is not None:
            try:
                record = await self._store.find(digest)
            except KeyStoreUnavailableError:
                if audit:
                    auth_failed("store_unavailable")
                raise
            self._cache.put(digest, record)
        if record is None:
            raise _refuse("unknown", "Incorrect API key provided.", audit=audit)
        return record

    async def _touch(self, record: KeyRecord, now: float) -> None:
        """Note the key's last use at most every ``touch_interval_s`` (by the record and by this replica)."""
        if self._store is None or (record.last_used or 0.0) + self._touch_interval_s > now:
            return
        if self._touched.get(record.key_id, 0.0) + self._touch_interval_s > now:
            return
        if len(self._touched) >= 10_000:
            self._touched.clear()
        self._touched[record.key_id] = now
        try:
            await self._store.touch(record.key_id, now)
        except KeyStoreUnavailableError:
            _log.warning("last-used time not written: key store unavailable", extra={"ragd": {
                "key_id": record.key_id}})


def _refuse(reason: AuthFailure, message: str, *, audit: bool, key_id: str | None = None) -> AuthenticationError:
    if audit:
        auth_failed(reason, key_id=key_id)
    return AuthenticationError(message)
