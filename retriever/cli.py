"""``ragd ingest PATH --collection NAME [--tenant default] [--create]``: ingest files into the local store."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from services.protocols import EpochStore

__all__ = ["add_ingest", "ingest"]


def add_ingest(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a txt/md/html/pdf file or a folder of them")
    parser.add_argument("--collection", required=True, help="collection to add the documents to")
    parser.add_argument("--tenant", default="default", help="tenant that owns the collection (default: default)")
    parser.add_argument("--create", action="store_true", help="create the collection if it does not exist")
    parser.add_argument("--batch", type=int, default=16, help="documents per ingest call (default: 16)")
    parser.add_argument("--data-dir", type=Path, default=None, help="state directory (default: settings)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    settings = RetrieverSettings(**overrides)
    try:
        docs = load_path(args.path, max_bytes=settings.max_document_bytes, timeout_s=settings.parse_timeout_s)
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


def _merge(a: IngestReport, b: IngestReport) -> IngestReport:
    return a.model_copy(update={
        "added": a.added + b.added, "updated": a.updated + b.updated, "unchanged": a.unchanged + b.unchanged,
        "deleted": a.deleted + b.deleted, "chunks_added": a.chunks_added + b.chunks_added,
        "chunks_removed": a.chunks_removed + b.chunks_removed, "epoch": b.epoch or a.epoch})
