"""Crash durability: after kill -9 mid-ingest, acknowledged documents are whole and searchable, nothing
partial is visible, orphans are cleaned up, and re-sending is idempotent."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from services.contracts import RetrieveRequest
from services.epochs import MemoryEpochStore
from services.errors import NotFoundError
from tests.retriever.conftest import load_docs

ROOT = Path(__file__).resolve().parents[2]


def _child(data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.retriever.crash_child", str(data_dir), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _acked(output: str) -> list[str]:
    return [doc for line in output.splitlines() if line.startswith("acked") for doc in line.split()[1:]]


async def _check_after_crash(data_dir: Path, acked: list[str]) -> None:
    settings = RetrieverSettings(data_dir=data_dir, redis_url=None, orphan_grace_s=0)
    retriever = LocalRetriever(settings, MemoryEpochStore())
    await retriever.warm_up()
    view = await retriever.view("acme", "kb")
    assert set(acked) <= set(view.docs)
    stored = {c.id for c in await asyncio.to_thread(retriever.store.load_chunks, "acme", "kb")}
    for record in view.docs.values():  # every visible document is whole
        assert set(record.chunk_ids) <= stored and set(record.chunk_ids) <= set(view.chunks)
    assert stored == set(view.chunks)  # orphans of the interrupted call were removed on reload
    docs = load_docs()
    by_id = {str(d.id): d for d in docs}
    for doc_id in acked:
        query = RetrieveRequest(tenant="acme", collection="kb", query=by_id[doc_id].text, top_k=1)
        hit = await retriever.retrieve(query)
        assert hit.chunks[0].doc_id == doc_id and {"bm25", "dense"} <= set(hit.chunks[0].ranks)  # + english
    resend = docs[: len(view.docs) + 2]  # what was committed, plus the call that was interrupted
    report = await retriever.add_documents("acme", "kb", resend)
    assert set(report.unchanged) == set(view.docs) and not report.updated
    assert set(report.added) == {str(d.id) for d in resend} - set(view.docs)


def test_kill_between_chunk_write_and_commit(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    child = _child(data_dir, "--die-before-commit", "3")
    output, _ = child.communicate(timeout=240)
    assert child.returncode == -signal.SIGKILL
    acked = _acked(output)
    assert acked == [str(d.id) for d in load_docs()[:4]]

    async def interrupted_call_is_invisible() -> None:
        retriever = LocalRetriever(RetrieverSettings(data_dir=data_dir, redis_url=None), MemoryEpochStore())
        await retriever.warm_up()
        for doc in load_docs()[4:6]:
            with pytest.raises(NotFoundError):
                await retriever.get_document("acme", "kb", str(doc.id))
        hit = await retriever.retrieve(RetrieveRequest(tenant="acme", collection="kb", query="KTX 고속철도 개통"))
        assert "ko-ktx" not in {c.doc_id for c in hit.chunks}
        assert len(await asyncio.to_thread(retriever.store.load_chunks, "acme", "kb")) == 6  # 2 orphans, unseen

    asyncio.run(interrupted_call_is_invisible())
    asyncio.run(_check_after_crash(data_dir, acked))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_at_a_random_moment(tmp_path: Path, seed: int) -> None:
    data_dir = tmp_path / "state"
    child = _child(data_dir)
    assert child.stdout is not None
    first = child.stdout.readline()
    assert first.startswith("acked")
    time.sleep(random.Random(seed).uniform(0.0, 2.0))
    os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate(timeout=60)
    asyncio.run(_check_after_crash(data_dir, _acked(first + rest)))
