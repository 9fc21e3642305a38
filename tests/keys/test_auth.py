"""Authentication with stored keys beside configured ones (both stores), the auth mode rule, per-key
limits, and the audit trail of changes and refusals (never a key)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from gateway.auth import AuthConfigError, Authenticator, KeyRing, Principal, resolve_mode
from gateway.keystore import KeyStoreUnavailableError, RedisKeyStore, hash_key
from gateway.keystore.admin import KeyAdmin, KeySpec
from gateway.ratelimit import MemoryCounters, RateLimiter
from services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
)
from services.telemetry import AUTH_FAILURES, KEY_EVENTS
from tests.keys.conftest import StoreFactory, record

CONFIGURED = "sk-configured-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class AuditRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(dict(getattr(record, "ragd", {})))


@pytest.fixture
def audit() -> Iterator[AuditRecords]:
    handler = AuditRecords()
    logger = logging.getLogger("ragd.audit")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def _count(metric: Any, label: str) -> float:
    value: float = metric.labels(label)._value.get()
    return value


def test_stored_and_configured_keys_authenticate_side_by_side(make_store: StoreFactory) -> None:
    async def run() -> None:
        store = make_store()
        admin = KeyAdmin(store, actor="test", source="test")
        key, rec = await admin.create(KeySpec(tenant="acme", role="admin", name="ops", rpm=3, tpm=500))
        auth = Authenticator(KeyRing.load(file=None, inline=f"{CONFIGURED}:beta:user"), store, mode="keys")
        assert await auth.authenticate(f"Bearer {key}") == Principal("acme", "admin", rec.key_id, 3, 500)
        assert (await auth.authenticate(f"Bearer {CONFIGURED}")).tenant == "beta"
        with pytest.raises(AuthenticationError, match="Incorrect API key"):
            await auth.authenticate("Bearer rk-not-a-stored-key")
        await store.aclose()

    asyncio.run(run())


def test_revoked_rotated_and_expired_keys_are_refused_and_audited(make_store: StoreFactory,
                                                                  audit: AuditRecords) -> None:
    clock = Clock()

    async def run() -> None:
        store = make_store()
        admin = KeyAdmin(store, actor="key-admin", source="api", clock=clock)
        auth = Authenticator(KeyRing([]), store, mode="keys", cache_ttl_s=0, clock=clock)
        control, _ = await admin.create(KeySpec(tenant="acme"))
        doomed, doomed_rec = await admin.create(KeySpec(tenant="acme"))
        old, rotating = await admin.create(KeySpec(tenant="acme"))
        brief, _ = await admin.create(KeySpec(tenant="acme", expires_in_s=60))
        for key in (control, doomed, old, brief):
            await auth.authenticate(f"Bearer {key}")
        revoked_before = _count(AUTH_FAILURES, "revoked")
        await admin.revoke(doomed_rec.key_id)
        with pytest.raises(AuthenticationError, match="revoked"):
            await auth.authenticate(f"Bearer {doomed}")
        assert _count(AUTH_FAILURES, "revoked") == revoked_before + 1
        new, rotated = await admin.rotate(rotating.key_id)
        assert rotated.key_id == rotating.key_id and new != old
        with pytest.raises(AuthenticationError, match="Incorrect"):
            await auth.authenticate(f"Bearer {old}")
        assert (await auth.authenticate(f"Bearer {new}")).key_id == rotating.key_id
        clock.now += 61
        with pytest.raises(AuthenticationError, match="expired"):
            await auth.authenticate(f"Bearer {brief}")
        assert (await auth.authenticate(f"Bearer {control}")).tenant == "acme"  # the control still works
        with pytest.raises(ConflictError):
            await admin.rotate(doomed_rec.key_id)  # a revoked key gets no new secret
        with pytest.raises(NotFoundError):
            await admin.revoke("key-0000000000000000")
        await store.aclose()
        return None

    asyncio.run(run())
    events = [e["event"] for e in audit.events]
    assert events.count("key_created") == 4 and "key_revoked" in events and "key_rotated" in events
    refusals = [e for e in audit.events if e["event"] == "auth_failed"]
    assert {e["reason"] for e in refusals} == {"revoked", "unknown", "expired"}
    text = repr(audit.events)
    assert "rk-" not in text and "key_sha256" not in text  # never a key, never a hash


def test_a_revocation_elsewhere_is_seen_within_the_cache_ttl(make_store: StoreFactory) -> None:
    async def run() -> None:
        replica, other = make_store(), make_store()
        key, rec = await KeyAdmin(other, actor="t", source="t").create(KeySpec(tenant="acme"))
        auth = Authenticator(KeyRing([]), replica, mode="keys", cache_ttl_s=0.3)
        await auth.authenticate(f"Bearer {key}")
        await other.revoke(rec.key_id)
        await asyncio.sleep(0.4)
        with pytest.raises(AuthenticationError, match="revoked"):
            await auth.authenticate(f"Bearer {key}")
        for store in (replica, other):
            await store.aclose()

    asyncio.run(run())


def test_a_revocation_on_this_replica_is_seen_at_once(make_store: StoreFactory) -> None:
    async def run() -> None:
        store = make_store()
        auth = Authenticator(KeyRing([]), store, mode="keys", cache_ttl_s=1.0)
        admin = KeyAdmin(store, actor="t", source="t", on_change=auth.forget)
        key, rec = await admin.create(KeySpec(tenant="acme"))
        await auth.authenticate(f"Bearer {key}")
        await admin.revoke(rec.key_id)
        with pytest.raises(AuthenticationError, match="revoked"):
            await auth.authenticate(f"Bearer {key}")
        await store.aclose()

    asyncio.run(run())


def test_last_used_is_written_at_most_once_per_interval(make_store: StoreFactory) -> None:
    clock = Clock()

    async def run() -> None:
        store = make_store()
        key, rec = await KeyAdmin(store, actor="t", source="t").create(KeySpec(tenant="acme"))
        auth = Authenticator(KeyRing([]), store, mode="keys", cache_ttl_s=0, touch_interval_s=60, clock=clock)
        first = clock.now
        await auth.authenticate(f"Bearer {key}")
        clock.now += 30
        await auth.authenticate(f"Bearer {key}")
        assert (await store.get(rec.key_id)).last_used == first  # type: ignore[union-attr]
        clock.now += 31
        await auth.authenticate(f"Bearer {key}")
        assert (await store.get(rec.key_id)).last_used == clock.now  # type: ignore[union-attr]
        await store.aclose()

    asyncio.run(run())


def test_an_unreachable_store_is_a_503_and_configured_keys_still_work(audit: AuditRecords) -> None:
    async def run() -> None:
        store = RedisKeyStore.from_url("redis://127.0.0.1:1/0", prefix="ragd:test:nowhere:", timeout_s=0.3)
        auth = Authenticator(KeyRing.load(file=None, inline=f"{CONFIGURED}:beta:user"), store, mode="keys")
        with pytest.raises(KeyStoreUnavailableError) as info:
            await auth.authenticate("Bearer rk-some-stored-key")
        assert info.value.status == 503
        assert (await auth.authenticate(f"Bearer {CONFIGURED}")).tenant == "beta"
        await store.aclose()

    asyncio.run(run())
    assert [e["reason"] for e in audit.events if e["event"] == "auth_failed"] == ["store_unavailable"]


def test_the_fast_path_look_is_not_audited(audit: AuditRecords) -> None:
    auth = Authenticator(KeyRing([]), None, mode="keys")
    with pytest.raises(AuthenticationError):
        asyncio.run(auth.authenticate("Bearer rk-wrong", audit=False))
    assert audit.events == []
    with pytest.raises(AuthenticationError):  # the control: the route's look is audited
        asyncio.run(auth.authenticate("Bearer rk-wrong"))
    assert [e["reason"] for e in audit.events] == ["unknown"]


def test_the_auth_mode_rule(make_store: StoreFactory) -> None:
    configured = KeyRing.load(file=None, inline=f"{CONFIGURED}:beta:user")
    empty = KeyRing([])

    async def run() -> None:
        store = make_store()
        assert await resolve_mode("auto", empty, store) == "open"
        assert await resolve_mode("auto", configured, store) == "keys"
        assert await resolve_mode("keys", empty, store) == "keys"
        assert await resolve_mode("open", empty, store) == "open"
        with pytest.raises(AuthConfigError):
            await resolve_mode("open", configured, store)
        _, revoked = record()
        await store.add(replace(revoked, revoked=True))
        _, expired = record(expires_at=time.time() - 1)
        await store.add(expired)
        assert await resolve_mode("auto", empty, store) == "open"  # only inactive keys
        await store.add(record()[1])
        assert await resolve_mode("auto", empty, store) == "keys"
        await store.aclose()
        unreachable = RedisKeyStore.from_url("redis://127.0.0.1:1/0", prefix="ragd:test:nowhere:", timeout_s=0.3)
        with pytest.raises(AuthConfigError, match="RAGD_GATEWAY_AUTH"):
            await resolve_mode("auto", empty, unreachable, backoff_s=0.01)
        assert await resolve_mode("keys", empty, unreachable) == "keys"  # an explicit mode needs no read
        await unreachable.aclose()

    asyncio.run(run())


@pytest.mark.parametrize("spec", [
    KeySpec(tenant="no spaces"), KeySpec(tenant=""), KeySpec(tenant="acme", role="root"),  # type: ignore[arg-type]
    KeySpec(tenant="acme", expires_in_s=0), KeySpec(tenant="acme", rpm=-1),
])
def test_bad_specs_are_refused(make_store: StoreFactory, spec: KeySpec) -> None:
    async def run() -> None:
        store = make_store()
        admin = KeyAdmin(store, actor="t", source="t")
        with pytest.raises(InvalidRequestError):
            await admin.create(spec)
        await admin.create(KeySpec(tenant="acme.ops-1_x"))  # the control
        assert len(await store.list()) == 1
        await store.aclose()

    asyncio.run(run())


def test_key_events_are_counted() -> None:
    before = _count(KEY_EVENTS, "created")
    from gateway.audit import key_event

    key_event("created", record()[1], actor="t", source="t")
    assert _count(KEY_EVENTS, "created") == before + 1


def test_a_keys_own_limits_replace_the_gateways() -> None:
    async def run() -> None:
        limiter = RateLimiter(MemoryCounters(), rpm=0, tpm=0)
        strict = Principal("t", "user", uuid.uuid4().hex[:8], rpm=1)
        await limiter.admit(strict)
        with pytest.raises(RateLimitError, match="Request rate"):
            await limiter.admit(strict)
        tokens = Principal("t", "user", uuid.uuid4().hex[:8], tpm=10)
        await limiter.admit(tokens)
        await limiter.spend_tokens(tokens, 11)
        with pytest.raises(RateLimitError, match="Token rate"):
            await limiter.admit(tokens)
        unlimited = Principal("t", "user", uuid.uuid4().hex[:8], rpm=0)
        limited_gateway = RateLimiter(MemoryCounters(), rpm=1, tpm=0)
        for _ in range(3):
            await limited_gateway.admit(unlimited)  # 0: unlimited for this key despite the gateway's 1
        gateway_default = Principal("t", "user", uuid.uuid4().hex[:8])
        await limited_gateway.admit(gateway_default)
        with pytest.raises(RateLimitError):  # the control: no own limit, the gateway's applies
            await limited_gateway.admit(gateway_default)

    asyncio.run(run())


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
