"""``ragd ingest``: a folder into the local store, with a summary; running it again changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from services.cli import main
from services.contracts import RetrieveRequest
from services.epochs import MemoryEpochStore
from tests.retriever.conftest import CORPUS


def test_ingest_folder_then_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ingest", str(CORPUS / "files"), "--collection", "notes", "--tenant", "t1", "--create",
            "--data-dir", str(tmp_path)]
    assert main(argv) == 0
    assert "3 added, 0 updated, 0 unchanged, 3 chunks added" in capsys.readouterr().out
    assert main(argv) == 0
    assert "0 added, 0 updated, 3 unchanged" in capsys.readouterr().out

    async def search() -> list[str]:
        retriever = LocalRetriever(RetrieverSettings(data_dir=tmp_path, redis_url=None), MemoryEpochStore())
        result = await retriever.retrieve(RetrieveRequest(tenant="t1", collection="notes", query="토마토 심기"))
        return [c.doc_id for c in result.chunks]

    assert asyncio.run(search())[0] == "garden.html"


def test_ingest_into_a_missing_collection_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ingest", str(CORPUS / "files" / "ferry.txt"), "--collection", "absent", "--data-dir", str(tmp_path)]
    assert main(argv) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "nothing"), "--collection", "x", "--data-dir", str(tmp_path)]) == 1
