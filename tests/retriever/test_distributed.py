"""Distributed mode: replicas with their own disks share a Chroma server and Redis epochs.

A replica follows another's ingest through the shared epoch; with the Chroma server gone, a replica keeps
answering from BM25 (degraded: dense).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from services.contracts import CollectionConfig, DocumentIn, RetrieveRequest
from services.epochs import RedisEpochStore
from services.errors import DependencyUnavailableError
from tests.retriever.conftest import load_docs

REDIS_URL = "redis://127.0.0.1:6379/0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    chroma = Path(sys.executable).with_name("chroma")
    process = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "chroma"), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={"ANONYMIZED_TELEMETRY": "False", "PATH": "/usr/bin:/bin"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("chroma server did not start")
    yield url, process
    process.kill()
    process.wait(10)


def _replica(tmp_path: Path, name: str, chroma_url: str, epochs: RedisEpochStore) -> LocalRetriever:
    settings = RetrieverSettings(chroma_mode="http", chroma_url=chroma_url, data_dir=tmp_path / name,
                                 redis_url=REDIS_URL)
    return LocalRetriever(settings, epochs)


@pytest.mark.slow
def test_replicas_share_chroma_and_redis_epochs(tmp_path: Path,
                                                chroma_server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, process = chroma_server
    docs: list[DocumentIn] = load_docs()
    tenant = "t-" + secrets.token_hex(4)  # epochs live in the shared Redis: keep this test's keys apart

    async def run() -> None:
        redis = Redis.from_url(REDIS_URL)
        epochs = RedisEpochStore(redis, prefix=f"ragd:test:{tenant}:")
        try:
            a, b = _replica(tmp_path, "a", url, epochs), _replica(tmp_path, "b", url, epochs)
            await a.warm_up()
            await b.warm_up()
            await a.create_collection(tenant, "kb", CollectionConfig(hnsw_m=8))
            await a.add_documents(tenant, "kb", docs[:3])
            ask = RetrieveRequest(tenant=tenant, collection="kb", query="김장 풍습", top_k=2)
            first = await b.retrieve(ask)
            assert first.chunks[0].doc_id == "ko-kimchi" and first.degraded == []
            report = await a.add_documents(tenant, "kb", [docs[13]])  # en-volcano, through replica A
            volcano = await b.retrieve(ask.model_copy(update={"query": "Pompeii volcano"}))
            assert volcano.epoch == report.epoch and volcano.chunks[0].doc_id == "en-volcano"
            assert [c.name for c in await b.list_collections(tenant)] == ["kb"]

            process.kill()
            process.wait(10)
            down = await b.retrieve(ask)
            assert down.degraded == ["dense"] and down.chunks[0].doc_id == "ko-kimchi"
            assert down.chunks[0].ranks == {"bm25": 1}
            assert not (await b.ready())["store"]
            with pytest.raises(DependencyUnavailableError):
                await b.add_documents(tenant, "kb", [docs[14]])
            with pytest.raises(DependencyUnavailableError):
                await b.list_collections(tenant)
        finally:
            await redis.delete(*[k async for k in redis.scan_iter(f"ragd:test:{tenant}:*")] or ["-"])
            await redis.aclose()

    asyncio.run(run())
