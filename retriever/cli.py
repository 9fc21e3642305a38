"""``ragd ingest PATH --collection NAME [--tenant default] [--create]``: ingest files into the local store."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from retriever.loaders import load_path
from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from services.contracts import CollectionConfig, DocumentIn, IngestReport
from services.epochs import MemoryEpochStore, RedisEpochStore
from services.errors import ConflictError, RagdError
from services.httpclient import ServiceClient
from services.protocols import EpochStore

__all__ = ["add_ingest", "ingest"]


def add_ingest(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a txt/md/html/pdf file or a folder of them")
    parser.add_argument("--collection", required=True, help="collection to add the documents to")
    parser.add_argument("--tenant", default="default", help="tenant that owns the collection (default: default)")
    parser.add_argument("--create", action="store_true", help="create the collection if it does not exist")
    parser.add_argument("--batch", type=int, default=16, help="documents per ingest call (default: 16)")
    parser.add_argument("--data-dir", type=Path, default=None, help="state directory (default: settings)")
    parser.add_argument("--url", default=os.environ.get("RAGD_URL"),
                        help="a running ragd gateway to send the documents to (its caches and indexes follow); "
                             "default: $RAGD_URL, else the local store")
    parser.add_argument("--api-key", default=os.environ.get("RAGD_API_KEY", "none"),
                        help="API key for --url (default: $RAGD_API_KEY)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    settings = RetrieverSettings(**overrides)
    try:
        docs = load_path(args.path, max_bytes=settings.max_document_bytes, timeout_s=settings.parse_timeout_s)
        if args.url:
            report = asyncio.run(ingest_over_http(args.url, args.api_key, args.collection, docs,
                                                  create=args.create, batch=args.batch))
        else:
            report = asyncio.run(ingest(settings, args.tenant, args.collection, docs, create=args.create,
                                        batch=args.batch))
    except (RagdError, FileNotFoundError) as exc:
        print(f"ragd ingest: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(f"collection {report.collection}: {len(report.added)} added, {len(report.updated)} updated, "
          f"{len(report.unchanged)} unchanged, {report.chunks_added} chunks added, "
          f"{report.chunks_removed} removed; epoch {report.epoch}")
    return 0


async def _epochs(settings: RetrieverSettings) -> EpochStore:
    if settings.redis_url:
        from redis.asyncio import Redis

        return RedisEpochStore(Redis.from_url(settings.redis_url))
    return MemoryEpochStore()


async def ingest(settings: RetrieverSettings, tenant: str, collection: str, docs: Sequence[DocumentIn], *,
                 create: bool = False, batch: int = 16) -> IngestReport:
    """Add ``docs`` in batches with a progress bar; returns the summed report."""
    service = LocalRetriever(settings, await _epochs(settings))
    await service.warm_up()
    try:
        if create:
            with contextlib.suppress(ConflictError):
                await service.create_collection(tenant, collection, CollectionConfig())
        total = IngestReport(collection=collection, epoch=await service.epochs.get(tenant, collection))
        with tqdm(total=len(docs), unit="doc", desc=f"ingest {collection}") as bar:
            for start in range(0, len(docs), batch):
                part = await service.add_documents(tenant, collection, docs[start:start + batch])
                total = _merge(total, part)
                bar.update(len(docs[start:start + batch]))
        return total
    finally:
        await service.aclose()


async def ingest_over_http(url: str, api_key: str, collection: str, docs: Sequence[DocumentIn], *,
                           create: bool = False, batch: int = 16) -> IngestReport:
    """Send ``docs`` to a running gateway's REST API in batches (the tenant is the API key's)."""
    base = url.rstrip("/").removesuffix("/v1") + "/v1"
    client = ServiceClient(base, dependency="gateway", timeout_s=600.0, retries=0,
                           headers={"authorization": f"Bearer {api_key}"})
    try:
        if create:
            with contextlib.suppress(ConflictError):
                await client.request("POST", "/collections", json={"name": collection})
        total = IngestReport(collection=collection)
        with tqdm(total=len(docs), unit="doc", desc=f"ingest {collection}") as bar:
            for start in range(0, len(docs), batch):
                part = docs[start:start + batch]
                body = {"documents": [d.model_dump(mode="json") for d in part]}
                data = await client.request("POST", f"/collections/{collection}/documents", json=body)
                total = _merge(total, IngestReport.model_validate(data))
                bar.update(len(part))
        return total
    finally:
        await client.aclose()


def _merge(a: IngestReport, b: IngestReport) -> IngestReport:
    return a.model_copy(update={
        "added": a.added + b.added, "updated": a.updated + b.updated, "unchanged": a.unchanged + b.unchanged,
        "deleted": a.deleted + b.deleted, "chunks_added": a.chunks_added + b.chunks_added,
        "chunks_removed": a.chunks_removed + b.chunks_removed, "epoch": b.epoch or a.epoch})
