"""Admin API for stored keys: create (the key shown once), list, get, revoke, rotate.

Admin role only; in open mode every route answers 403 saying how to configure keys. No answer
carries a key's hash, and only create and rotate carry the key itself.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from gateway.deps import PrincipalDep
from gateway.keystore.admin import TENANT_PATTERN, KeyAdmin, KeySpec
from gateway.keystore.records import KeyRecord, KeyState

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin/keys", tags=["admin"])

_TEN_YEARS_S = 10 * 365 * 86_400


class KeyCreate(BaseModel):
    tenant: str = Field(pattern=TENANT_PATTERN)
    role: Literal["user", "admin"] = "user"
    name: str = Field("", max_length=100, description="A label for people (who or what uses the key).")
    expires_in_s: int | None = Field(None, ge=1, le=_TEN_YEARS_S,
                                     description="Seconds until the key stops working; none: never.")
    rpm: int | None = Field(None, ge=0, description="Requests per minute for this key (0: unlimited); "
                                                    "none: the gateway's RAGD_GATEWAY_RATE_LIMIT_RPM.")
    tpm: int | None = Field(None, ge=0, description="Tokens per minute for this key (0: unlimited); "
                                                    "none: the gateway's RAGD_GATEWAY_RATE_LIMIT_TPM.")


class KeyInfo(BaseModel):
    """A stored key as admins see it: never the key, never its hash. Times are Unix seconds."""

    object: Literal["api_key"] = "api_key"
    key_id: str
    tenant: str
    role: str
    name: str
    created: int
    expires_at: int | None = None
    last_used: int | None = None
    revoked: bool
    state: KeyState
    rpm: int | None = None
    tpm: int | None = None

    @classmethod
    def of(cls, record: KeyRecord, now: float) -> KeyInfo:
        def seconds(value: float | None) -> int | None:
            return None if value is None else int(value)

        return cls(key_id=record.key_id, tenant=record.tenant, role=record.role, name=record.name,
                   created=int(record.created), expires_at=seconds(record.expires_at),
                   last_used=seconds(record.last_used), revoked=record.revoked, state=record.state(now),
                   rpm=record.rpm, tpm=record.tpm)


class KeyCreated(KeyInfo):
    key: str = Field(description="The API key; shown once, stored only as a hash.")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyInfo]


async def _admin(request: Request, principal: PrincipalDep) -> KeyAdmin:
    principal.require("admin")
    state = request.app.state
    return KeyAdmin(state.key_store, actor=principal.key_id, source="api", on_change=state.keys.forget)


AdminDep = Annotated[KeyAdmin, Depends(_admin)]
KeyIdPath = Annotated[str, Path(min_length=1, max_length=64)]


def _created(key: str, record: KeyRecord) -> KeyCreated:
    return KeyCreated(key=key, **KeyInfo.of(record, time.time()).model_dump(exclude={"object"}))


@router.post("", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyCreate, admin: AdminDep) -> Any:
    key, record = await admin.create(KeySpec(tenant=body.tenant, role=body.role, name=body.name,
                                             expires_in_s=body.expires_in_s, rpm=body.rpm, tpm=body.tpm))
    return _created(key, record)


@router.get("", response_model=KeyList)
async def list_keys(admin: AdminDep, tenant: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    now = time.time()
    records = [r for r in await admin.list() if tenant is None or r.tenant == tenant]
    return KeyList(data=[KeyInfo.of(r, now) for r in records])


@router.get("/{key_id}", response_model=KeyInfo)
async def get_key(key_id: KeyIdPath, admin: AdminDep) -> Any:
    return KeyInfo.of(await admin.get(key_id), time.time())


@router.post("/{key_id}/revoke", response_model=KeyInfo)
async def revoke_key(key_id: KeyIdPath, admin: AdminDep) -> Any:
    return KeyInfo.of(await admin.revoke(key_id), time.time())


@router.post("/{key_id}/rotate", response_model=KeyCreated)
async def rotate_key(key_id: KeyIdPath, admin: AdminDep) -> Any:
    key, record = await admin.rotate(key_id)
    return _created(key, record)
