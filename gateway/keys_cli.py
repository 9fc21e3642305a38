"""``ragd keys create|list|revoke|rotate``: manage stored API keys from the gateway's host.

The command writes to the store the gateway reads (the same settings: ``RAGD_REDIS_URL`` and
``RAGD_GATEWAY_KEY_STORE_PREFIX`` for Redis, ``RAGD_DATA_DIR`` for the file), so the first admin key
needs no running server. ``create`` and ``rotate`` print the key alone on stdout (``--json``: the
whole record with it) and the rest on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["add_keys", "parse_duration"]

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(text: str) -> int:
    """Seconds in ``90``, ``90s``, ``15m``, ``12h`` or ``30d``."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration like 3600, 15m, 12h or 30d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _settings(args: argparse.Namespace) -> Any:
    from gateway.settings import GatewaySettings

    overrides: dict[str, Any] = {}
    if args.redis_url is not None:
        overrides["redis_url"] = args.redis_url or None
    if args.data_dir is not None:
        overrides["data_dir"] = Path(args.data_dir)
    if args.store is not None:
        overrides["key_store"] = args.store
    if args.prefix is not None:
        overrides["key_store_prefix"] = args.prefix
    return GatewaySettings(**overrides)


def _run(work: Callable[[Any, argparse.Namespace], Awaitable[int]]) -> Callable[[argparse.Namespace], int]:
    """A subcommand: open the store from the settings, run ``work`` with an admin whose actor is ``cli``."""

    def run(args: argparse.Namespace) -> int:
        from gateway.keystore import open_key_store
        from gateway.keystore.admin import KeyAdmin
        from services import telemetry
        from services.errors import RagdError

        settings = _settings(args)
        telemetry.configure_logging(settings.log_level)

        async def main() -> int:
            store = open_key_store(settings)
            try:
                return await work(KeyAdmin(store, actor="cli", source="cli"), args)
            finally:
                await store.aclose()

        try:
            return asyncio.run(main())
        except RagdError as exc:
            print(f"ragd keys: {exc.message}", file=sys.stderr)
            return 1

    return run


def _info(record: Any, key: str | None = None) -> dict[str, Any]:
    from gateway.routes.keys import KeyInfo

    info = KeyInfo.of(record, time.time()).model_dump()
    return {**info, "key": key} if key is not None else info


def _show_secret(args: argparse.Namespace, key: str, record: Any, verb: str) -> None:
    if args.json:
        print(json.dumps(_info(record, key)))
    else:
        print(key)
    print(f"ragd keys: {verb} {record.key_id} (tenant {record.tenant}, role {record.role}); the key is shown "
          "once, keep it now", file=sys.stderr)


async def _create(admin: Any, args: argparse.Namespace) -> int:
    from gateway.keystore.admin import KeySpec

    had_active = any(r.state(time.time()) == "active" for r in await admin.list())
    key, record = await admin.create(KeySpec(tenant=args.tenant, role=args.role, name=args.name,
                                             expires_in_s=args.expires_in, rpm=args.rpm, tpm=args.tpm))
    _show_secret(args, key, record, "created")
    if not had_active:
        print("ragd keys: this is the store's first active key. A gateway running now keeps its mode until it "
              "restarts; with RAGD_GATEWAY_AUTH=auto (the default) it then requires keys from every client "
              "(RAGD_GATEWAY_AUTH=open keeps open mode, RAGD_GATEWAY_AUTH=keys makes it explicit).",
              file=sys.stderr)
    return 0


async def _list(admin: Any, args: argparse.Namespace) -> int:
    rows = [_info(r) for r in await admin.list() if args.tenant is None or r.tenant == args.tenant]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'KEY_ID':<22} {'TENANT':<16} {'ROLE':<6} {'STATE':<8} {'EXPIRES_AT':<20} {'LAST_USED':<20} NAME")
    for row in rows:
        print(f"{row['key_id']:<22} {row['tenant']:<16} {row['role']:<6} {row['state']:<8} "
              f"{_when(row['expires_at']):<20} {_when(row['last_used']):<20} {row['name']}")
    return 0


def _when(value: int | None) -> str:
    return "-" if value is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value))


async def _revoke(admin: Any, args: argparse.Namespace) -> int:
    record = await admin.revoke(args.key_id)
    print(json.dumps(_info(record)) if args.json else f"revoked {record.key_id}")
    return 0


async def _rotate(admin: Any, args: argparse.Namespace) -> int:
    key, record = await admin.rotate(args.key_id)
    _show_secret(args, key, record, "rotated")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None,
                        help="Redis of the key store (default: RAGD_REDIS_URL; '' for none)")
    parser.add_argument("--data-dir", default=None, help="data dir of the file store (default: RAGD_DATA_DIR)")
    parser.add_argument("--prefix", default=None,
                        help="Redis key prefix of the store (default: RAGD_GATEWAY_KEY_STORE_PREFIX)")
    parser.add_argument("--store", choices=("auto", "redis", "file"), default=None,
                        help="key store (default: RAGD_GATEWAY_KEY_STORE, auto)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_keys(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a key (printed once)")
    create.add_argument("--tenant", required=True, help="the key's tenant")
    create.add_argument("--role", choices=("user", "admin"), default="user")
    create.add_argument("--name", default="", help="a label for people")
    create.add_argument("--expires-in", type=parse_duration, default=None,
                        help="lifetime: seconds, or 15m, 12h, 30d (default: never expires)")
    create.add_argument("--rpm", type=int, default=None, help="requests per minute for this key (0: unlimited)")
    create.add_argument("--tpm", type=int, default=None, help="tokens per minute for this key (0: unlimited)")
    create.set_defaults(run=_run(_create))
    listing = sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--tenant", default=None, help="only this tenant's keys")
    listing.set_defaults(run=_run(_list))
    revoke = sub.add_parser("revoke", help="revoke a key for good")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_run(_revoke))
    rotate = sub.add_parser("rotate", help="a new secret for a key; the old one stops working")
    rotate.add_argument("key_id")
    rotate.set_defaults(run=_run(_rotate))
    for child in (create, listing, revoke, rotate):
        _common(child)
