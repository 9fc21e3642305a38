"""API keys -> (tenant, role). Keys are kept only as SHA-256 hashes; comparisons are constant-time."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from services.errors import AuthenticationError, PermissionDeniedError

__all__ = ["KeyRing", "Principal", "hash_key"]

Role = Literal["user", "admin"]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and a role. ``key_id`` is a short hash prefix, safe to log."""

    tenant: str
    role: Role
    key_id: str

    def require(self, role: Role) -> None:
        if role == "admin" and self.role != "admin":
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
    """The keys the gateway accepts. Empty means open mode: loopback only, one default tenant."""

    def __init__(self, entries: list[KeyEntry], *, default_tenant: str = "default") -> None:
        self._by_hash: dict[str, Principal] = {
            e.digest(): Principal(tenant=e.tenant, role=e.role, key_id=e.digest()[:8]) for e in entries}
        self._open = Principal(tenant=default_tenant, role="admin", key_id="open")

    @classmethod
    def load(cls, *, file: Path | None, inline: str, default_tenant: str) -> KeyRing:
        entries: list[KeyEntry] = []
        if file is not None:
            text = file.read_text(encoding="utf-8")
            raw = yaml.safe_load(text) if file.suffix in (".yaml", ".yml") else json.loads(text)
            items = raw.get("keys", []) if isinstance(raw, dict) else raw
            entries.extend(KeyEntry.model_validate(item) for item in items)
        for spec in filter(None, (s.strip() for s in inline.split(","))):
            key, tenant, *role = spec.split(":")
            entries.append(KeyEntry(key=key, tenant=tenant, role=role[0] if role else "user"))
        return cls(entries, default_tenant=default_tenant)

    @property
    def is_open(self) -> bool:
        return not self._by_hash

    def add(self, tenant: str, role: Role) -> tuple[str, Principal]:
        """Create a new key (admin API); the plain key is returned once and never stored."""
        key = "rk-" + secrets.token_urlsafe(32)
        entry = KeyEntry(key=key, tenant=tenant, role=role)
        principal = Principal(tenant=tenant, role=role, key_id=entry.digest()[:8])
        self._by_hash[entry.digest()] = principal
        return key, principal

    def authenticate(self, authorization: str | None) -> Principal:
        if self.is_open:
            return self._open
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthenticationError("Missing API key: send 'Authorization: Bearer <key>'.")
        digest = hash_key(authorization[7:].strip())
        for known, principal in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return principal
        raise AuthenticationError("Incorrect API key provided.")
