"""Managing stored keys: create, list, revoke, rotate. Used by the admin API and by ``ragd keys``.

Every change is audited (:mod:`gateway.audit`). The plain key leaves this module only in the
return value of :meth:`KeyAdmin.create` and :meth:`KeyAdmin.rotate`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.audit import key_event
from gateway.keystore.records import KeyRecord, KeyStore, Role, hash_key, new_key_id, new_secret
from services.errors import ConflictError, InvalidRequestError, NotFoundError

__all__ = ["TENANT_PATTERN", "KeyAdmin", "KeySpec"]

TENANT_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


@dataclass(frozen=True)
class KeySpec:
    """What a new key is for; ``expires_in_s`` counts from its creation, ``None`` never expires."""

    tenant: str
    role: Role = "user"
    name: str = ""
    expires_in_s: float | None = None
    rpm: int | None = None
    tpm: int | None = None

    def check(self) -> None:
        """Refuse a spec the wire model would refuse (the CLI builds specs too)."""
        if not re.fullmatch(TENANT_PATTERN, self.tenant):
            raise InvalidRequestError("A tenant is 1-64 letters, digits, '.', '_' or '-'.", param="tenant")
        if self.role not in ("user", "admin"):
            raise InvalidRequestError("A role is 'user' or 'admin'.", param="role")
        if self.expires_in_s is not None and self.expires_in_s <= 0:
            raise InvalidRequestError("expires_in_s must be positive.", param="expires_in_s")
        for name, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and value < 0:
                raise InvalidRequestError(f"{name} must be 0 (unlimited) or more.", param=name)


class KeyAdmin:
    """The operations on stored keys, for one actor (an admin key's id, or ``cli``) and source."""

    def __init__(self, store: KeyStore, *, actor: str, source: str, on_change: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.actor = actor
        self.source = source
        self._on_change = on_change
        self._clock = clock

    async def create(self, spec: KeySpec) -> tuple[str, KeyRecord]:
        """A new key: the plain key (shown once) and its record."""
        spec.check()
        now = self._clock()
        secret = new_secret()
        record = KeyRecord(key_id=new_key_id(), tenant=spec.tenant, role=spec.role, name=spec.name, created=now,
                           key_sha256=hash_key(secret),
                           expires_at=None if spec.expires_in_s is None else now + spec.expires_in_s,
                           rpm=spec.rpm, tpm=spec.tpm)
        await self.store.add(record)
        key_event("created", record, actor=self.actor, source=self.source)
        return secret, record

    async def list(self) -> list[KeyRecord]:
        return await self.store.list()

    async def get(self, key_id: str) -> KeyRecord:
        record = await self.store.get(key_id)
        if record is None:
            raise NotFoundError(f"No API key with id '{key_id}'.", param="key_id")
        return record

    async def revoke(self, key_id: str) -> KeyRecord:
        """Revoke a key for good (idempotent); its record stays, listed as revoked."""
        record = await self.store.revoke(key_id)
        if record is None:
            raise NotFoundError(f"No API key with id '{key_id}'.", param="key_id")
        self._on_change()
        key_event("revoked", record, actor=self.actor, source=self.source)
        return record

    async def rotate(self, key_id: str) -> tuple[str, KeyRecord]:
        """A new secret for the same record (tenant, role, limits, expiry); the old one stops working."""
        current = await self.get(key_id)
        state = current.state(self._clock())
        if state != "active":
            raise ConflictError(f"API key '{key_id}' is {state}; create a new key instead.", param="key_id")
        secret = new_secret()
        record = await self.store.rotate(key_id, hash_key(secret))
        if record is None:
            raise NotFoundError(f"No API key with id '{key_id}'.", param="key_id")
        self._on_change()
        key_event("rotated", record, actor=self.actor, source=self.source)
        return secret, record
