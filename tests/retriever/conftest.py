"""Shared fixtures of the retriever tests: the bilingual fixture corpus and fresh retrievers on tmp dirs."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from services.contracts import CollectionConfig, DocumentIn
from services.epochs import MemoryEpochStore

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus_small"


def load_docs() -> list[DocumentIn]:
    return [DocumentIn(**json.loads(line)) for line in (CORPUS / "docs.jsonl").read_text().splitlines() if line]


def load_queries() -> list[dict[str, str]]:
    return [json.loads(line) for line in (CORPUS / "queries.jsonl").read_text().splitlines() if line]


@pytest.fixture(scope="session")
def corpus_docs() -> list[DocumentIn]:
    return load_docs()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., RetrieverSettings]:
    def make(**overrides: Any) -> RetrieverSettings:
        return RetrieverSettings(**{"data_dir": tmp_path / "state", "redis_url": None, **overrides})

    return make


@pytest.fixture
def make_retriever(make_settings: Callable[..., RetrieverSettings]) -> Callable[..., LocalRetriever]:
    """A LocalRetriever on this test's data dir (not warmed; call ``await r.warm_up()`` in the test's loop)."""

    def make(**overrides: Any) -> LocalRetriever:
        return LocalRetriever(make_settings(**overrides), MemoryEpochStore())

    return make


@pytest.fixture(scope="session")
def corpus_template(tmp_path_factory: pytest.TempPathFactory, corpus_docs: list[DocumentIn]) -> Path:
    """A data dir where tenant 'acme' has collection 'kb' holding the fixture corpus (embedded once)."""
    state = tmp_path_factory.mktemp("corpus_template") / "state"

    async def build() -> None:
        retriever = LocalRetriever(RetrieverSettings(data_dir=state, redis_url=None), MemoryEpochStore())
        await retriever.warm_up()
        await retriever.create_collection("acme", "kb", CollectionConfig())
        await retriever.add_documents("acme", "kb", corpus_docs)
        await retriever.aclose()

    asyncio.run(build())
    return state


@pytest.fixture
def ingested(corpus_template: Path, make_retriever: Callable[..., LocalRetriever],
             make_settings: Callable[..., RetrieverSettings]) -> Callable[..., LocalRetriever]:
    """Like make_retriever, on a private copy of the ingested fixture corpus."""
    shutil.copytree(corpus_template, make_settings().data_dir)
    return make_retriever
