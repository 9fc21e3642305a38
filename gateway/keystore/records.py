"""What a stored API key is, and the interfaces a key store offers.

A store holds only the SHA-256 of each key. The plain key exists once: in the answer that creates
or rotates it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from services.errors import DependencyUnavailableError

__all__ = ["KeyLookup", "KeyRecord", "KeyState", "KeyStore", "KeyStoreUnavailableError", "Role", "hash_key",
           "new_key_id", "new_secret"]

Role = Literal["user", "admin"]
KeyState = Literal["active", "revoked", "expired"]

_SECRET_PREFIX = "rk-"


class KeyStoreUnavailableError(DependencyUnavailableError):
    """The key store cannot be read or written (503): a stored key can be neither checked nor changed."""

    def __init__(self, message: str = "The API key store is unavailable; retry shortly.") -> None:
        super().__init__(message, dependency="keystore")


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key: what every store and the keys file keep instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_secret() -> str:
    """A new plain API key (256 random bits)."""
    return _SECRET_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    """A new key id: public, safe to log and to show in lists; it names the record, not the secret."""
    return "key-" + secrets.token_hex(8)


@dataclass(frozen=True)
class KeyRecord:
    """One stored key. Times are Unix seconds; ``rpm``/``tpm`` of ``None`` follow the gateway's limits."""

    key_id: str
    tenant: str
    role: Role
    name: str
    created: float
    key_sha256: str
    expires_at: float | None = None
    last_used: float | None = None
    revoked: bool = False
    rpm: int | None = None
    tpm: int | None = None

    def state(self, now: float) -> KeyState:
        if self.revoked:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class KeyLookup(Protocol):
    """What authentication needs from a store: find a record by key hash, note that it was used."""

    async def find(self, key_sha256: str) -> KeyRecord | None: ...
    async def touch(self, key_id: str, at: float) -> None: ...


class KeyStore(KeyLookup, Protocol):
    """Stored keys for every replica: lookups by hash are one read, never a scan.

    ``add`` raises ``ConflictError`` when the id or the hash is already stored; ``revoke`` and
    ``rotate`` answer the changed record, or ``None`` for an unknown id.
    """

    async def add(self, record: KeyRecord) -> None: ...
    async def get(self, key_id: str) -> KeyRecord | None: ...
    async def list(self) -> list[KeyRecord]: ...
    async def revoke(self, key_id: str) -> KeyRecord | None: ...
    async def rotate(self, key_id: str, key_sha256: str) -> KeyRecord | None: ...
    async def aclose(self) -> None: ...
