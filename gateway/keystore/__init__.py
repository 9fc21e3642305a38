"""Stored API keys: one record per key (hash only), shared by every replica and by ``ragd keys``.

``RAGD_GATEWAY_KEY_STORE`` picks the store: ``redis`` (``RAGD_REDIS_URL``, shared by replicas),
``file`` (``keys/keys.json`` under ``RAGD_DATA_DIR``, embedded mode), or ``auto``: Redis when a Redis
URL is set, else the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gateway.keystore.file_store import FileKeyStore
from gateway.keystore.records import (
    KeyLookup,
    KeyRecord,
    KeyState,
    KeyStore,
    KeyStoreUnavailableError,
    Role,
    hash_key,
    new_key_id,
    new_secret,
)
from gateway.keystore.redis_store import RedisKeyStore
from gateway.settings import GatewaySettings

__all__ = ["KEY_STORES", "FileKeyStore", "KeyLookup", "KeyRecord", "KeyState", "KeyStore",
           "KeyStoreUnavailableError", "RedisKeyStore", "Role", "hash_key", "key_file_path", "new_key_id",
           "new_secret", "open_key_store", "store_kind"]


def key_file_path(data_dir: Path) -> Path:
    """Where the file store keeps its keys under a data dir."""
    return data_dir / "keys" / "keys.json"


def _redis(settings: GatewaySettings) -> KeyStore:
    if not settings.redis_url:
        raise ValueError("RAGD_GATEWAY_KEY_STORE=redis needs RAGD_REDIS_URL.")
    return RedisKeyStore.from_url(settings.redis_url, prefix=settings.key_store_prefix,
                                  timeout_s=settings.key_store_timeout_s)


def _file(settings: GatewaySettings) -> KeyStore:
    return FileKeyStore(key_file_path(settings.data_dir))


KEY_STORES: dict[str, Callable[[GatewaySettings], KeyStore]] = {"redis": _redis, "file": _file}


def store_kind(settings: GatewaySettings) -> str:
    """The store the settings name (``auto``: Redis when a Redis URL is set, else the file)."""
    if settings.key_store != "auto":
        return settings.key_store
    return "redis" if settings.redis_url else "file"


def open_key_store(settings: GatewaySettings) -> KeyStore:
    return KEY_STORES[store_kind(settings)](settings)
