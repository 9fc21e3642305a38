"""Audit events of API keys: one JSON log line on ``ragd.audit`` and one counter each.

Key creation, revocation and rotation, and every refused authentication, are logged with the key
id, tenant and role (never the key or its hash) and counted with bounded labels
(``ragd_key_events_total{event}``, ``ragd_auth_failures_total{reason}``).
"""

from __future__ import annotations

import logging
from typing import Literal

from gateway.keystore.records import KeyRecord
from services import telemetry
from services.telemetry import AUTH_FAILURES, KEY_EVENTS, child

__all__ = ["AuthFailure", "KeyEvent", "auth_failed", "key_event"]

KeyEvent = Literal["created", "revoked", "rotated"]
AuthFailure = Literal["missing", "unknown", "revoked", "expired", "store_unavailable"]

_log = logging.getLogger("ragd.audit")


def _request_id() -> str | None:
    ctx = telemetry.current()
    return ctx.request_id if ctx is not None else None


def key_event(event: KeyEvent, record: KeyRecord, *, actor: str, source: str) -> None:
    """A stored key changed; ``actor`` is the admin key's id (or ``cli``), ``source`` api or cli."""
    child(KEY_EVENTS, event).inc()
    _log.info("api key %s", event, extra={"ragd": {
        "event": f"key_{event}", "key_id": record.key_id, "tenant": record.tenant, "role": record.role,
        "name": record.name, "expires_at": record.expires_at, "actor": actor, "source": source,
        "request_id": _request_id()}})


def auth_failed(reason: AuthFailure, *, key_id: str | None = None) -> None:
    """A request was refused at authentication; ``key_id`` only when the key is known (revoked, expired)."""
    child(AUTH_FAILURES, reason).inc()
    _log.info("authentication failed", extra={"ragd": {
        "event": "auth_failed", "reason": reason, "key_id": key_id, "request_id": _request_id()}})
