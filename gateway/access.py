"""The gateway's access setup at start: open the key store, choose the auth mode, refuse an open
gateway on a non-loopback interface, and say which mode it runs in.

The rule (``RAGD_GATEWAY_AUTH``): ``open`` and ``keys`` are what they say; ``auto`` (the default)
is ``keys`` when a keys file or inline keys are configured or the store holds an active key at
start, else ``open``. The mode holds until the process ends: a key created while an open gateway
runs (by ``ragd keys create``; the admin API is off in open mode) changes nothing until a restart.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.auth import AuthConfigError, Authenticator, KeyRing, resolve_mode
from gateway.keystore import KeyStore, open_key_store, store_kind
from gateway.ops import is_loopback
from gateway.settings import GatewaySettings

__all__ = ["open_auth"]

_log = logging.getLogger("ragd.gateway")


@asynccontextmanager
async def open_auth(settings: GatewaySettings, ring: KeyRing) -> AsyncIterator[tuple[Authenticator, KeyStore]]:
    """The authenticator and the key store for one run of the gateway; the store closes after it."""
    store = open_key_store(settings)
    try:
        mode = await resolve_mode(settings.auth, ring, store)
        if mode == "open" and not is_loopback(settings.host):
            raise AuthConfigError(
                f"ragd: refusing to listen on {settings.host} with no API keys configured; create one with "
                "'ragd keys create --tenant ops --role admin' and set RAGD_GATEWAY_AUTH=keys, set "
                "RAGD_GATEWAY_API_KEYS_FILE, or listen on 127.0.0.1.")
        fields = {"auth": mode, "key_store": store_kind(settings), "configured_keys": len(ring)}
        if mode == "open":
            _log.warning(f"no API keys configured: serving on loopback only, every request is tenant "
                         f"'{settings.default_tenant}'; admin routes are off", extra={"ragd": fields})
        else:
            _log.info("API keys required", extra={"ragd": fields})
        yield Authenticator(ring, store, mode=mode, default_tenant=settings.default_tenant,
                            cache_ttl_s=settings.key_cache_ttl_s,
                            touch_interval_s=settings.key_touch_interval_s), store
    finally:
        await store.aclose()
