"""Stored API keys in one JSON file under the data dir: embedded mode's key store.

The gateway and ``ragd keys`` may use the file at the same time: every change takes an exclusive
``flock`` on a lock file beside it, re-reads the file, and replaces it atomically (write a temporary
file, fsync, rename). Lookups read an in-memory index by key hash, re-read when the file changed
(inode, size, modification time) and at least every ``max_age_s``, so a change made by another
process is seen within that time even where the file system's clock is coarse.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from gateway.keystore.records import KeyRecord, KeyStoreUnavailableError
from services.errors import ConflictError

__all__ = ["FileKeyStore"]

T = TypeVar("T")
_VERSION = 1


@dataclass(frozen=True)
class _Snapshot:
    """The file's records as read once; swapped whole, so a lookup never sees half of a change."""

    records: dict[str, KeyRecord] = field(default_factory=dict)
    by_hash: dict[str, str] = field(default_factory=dict)
    stamp: tuple[int, int, int] | None = None
    read_at: float = 0.0


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class FileKeyStore:
    """A :class:`~gateway.keystore.records.KeyStore` in ``path`` (JSON, mode 0600)."""

    def __init__(self, path: Path, *, max_age_s: float = 1.0) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._max_age_s = max_age_s
        self._snapshot = _Snapshot()
        self._write_lock = threading.Lock()

    # reads

    def _current(self) -> _Snapshot:
        snap = self._snapshot
        if time.monotonic() - snap.read_at < self._max_age_s and _stamp(self.path) == snap.stamp:
            return snap
        return self._reload()

    def _reload(self) -> _Snapshot:
        stamp = _stamp(self.path)
        records: dict[str, KeyRecord] = {}
        if stamp is not None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                records = {r.key_id: r for r in map(KeyRecord.from_json, data.get("keys", []))}
            except FileNotFoundError:
                records = {}
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                raise KeyStoreUnavailableError(f"The API key file {self.path} cannot be read.") from exc
        snap = _Snapshot(records, {r.key_sha256: r.key_id for r in records.values()}, stamp, time.monotonic())
        self._snapshot = snap
        return snap

    async def find(self, key_sha256: str) -> KeyRecord | None:
        snap = self._current()
        key_id = snap.by_hash.get(key_sha256)
        return snap.records.get(key_id) if key_id is not None else None

    async def get(self, key_id: str) -> KeyRecord | None:
        return self._current().records.get(key_id)

    async def list(self) -> list[KeyRecord]:
        return sorted(self._current().records.values(), key=lambda r: (r.created, r.key_id))

    # changes: read-modify-write under the file lock, in a thread (fsync must not stall the event loop)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, KeyRecord]]:
        """The records to change; written back atomically when the block ends without an error."""
        with self._write_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(self._lock_path, "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                records = dict(self._reload().records)
                yield records
                self._write(records)
                self._reload()

    def _write(self, records: dict[str, KeyRecord]) -> None:
        body = json.dumps({"version": _VERSION, "keys": [r.to_json() for r in records.values()]}, indent=1)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def _change(self, change: Callable[[dict[str, KeyRecord]], T]) -> T:
        def run() -> T:
            try:
                with self._locked() as records:
                    return change(records)
            except OSError as exc:
                raise KeyStoreUnavailableError(f"The API key file {self.path} cannot be written.") from exc

        return await asyncio.to_thread(run)

    async def add(self, record: KeyRecord) -> None:
        def change(records: dict[str, KeyRecord]) -> None:
            if record.key_id in records or any(r.key_sha256 == record.key_sha256 for r in records.values()):
                raise ConflictError("A key with this id or secret is already stored.")
            records[record.key_id] = record

        await self._change(change)

    async def touch(self, key_id: str, at: float) -> None:
        def change(records: dict[str, KeyRecord]) -> None:
            if key_id in records:
                records[key_id] = replace(records[key_id], last_used=at)

        await self._change(change)

    async def revoke(self, key_id: str) -> KeyRecord | None:
        def change(records: dict[str, KeyRecord]) -> KeyRecord | None:
            if key_id not in records:
                return None
            records[key_id] = replace(records[key_id], revoked=True)
            return records[key_id]

        return await self._change(change)

    async def rotate(self, key_id: str, key_sha256: str) -> KeyRecord | None:
        def change(records: dict[str, KeyRecord]) -> KeyRecord | None:
            if key_id not in records:
                return None
            if any(r.key_sha256 == key_sha256 for r in records.values()):
                raise ConflictError("A key with this secret is already stored.")
            records[key_id] = replace(records[key_id], key_sha256=key_sha256)
            return records[key_id]

        return await self._change(change)

    async def aclose(self) -> None:
        return None
