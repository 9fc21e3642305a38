"""In process, the retriever keeps its files under the gateway's data dir, also when the gateway's settings
are built in code: a test or an embedding application never writes into the working directory's ``.ragd``."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from gateway.components import _retriever
from gateway.settings import GatewaySettings
from services.epochs import MemoryEpochStore


def test_the_embedded_retriever_follows_the_gateways_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGD_DATA_DIR", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # the default data dir, .ragd, would land here
    settings = GatewaySettings(data_dir=tmp_path / "data")

    async def build() -> Path:
        async with AsyncExitStack() as stack:
            retriever = await _retriever(settings, MemoryEpochStore(), stack)
            return Path(retriever.settings.data_dir)

    assert asyncio.run(build()) == tmp_path / "data"
    assert (tmp_path / "data").is_dir() and not (cwd / ".ragd" / "chroma").exists()
