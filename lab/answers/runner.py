"""Runs questions through ragd's chat path and records what a client would see: the answer, its citations
(as document ids), the finish reason, the time to the first token and to the end.

In process (default): the embedded gateway's own pipeline, built by ``gateway.app.create_app``'s lifespan over a
fresh data directory, with the corpus ingested through the same corpus interface as the REST API. Against a
URL: a running ragd gateway, through the official ``openai`` client (streamed), the corpus ingested into a
collection of its own over the REST API.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from tqdm import tqdm

from lab.answers.data import QAItem
from services.contracts import DocumentIn

__all__ = ["GatewayRunner", "InProcessRunner", "Outcome", "Runner", "collection_name", "index_dir", "ingest_over_rest",
           "run_items"]

_INGEST_BATCH = 100


@dataclass
class Outcome:
    """What came back for one question."""

    item: QAItem
    answer: str = ""
    cited_docs: list[str] = field(default_factory=list)
    finish_reason: str = ""
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    error: str | None = None


def index_dir(root: Path, name: str, docs: Sequence[DocumentIn]) -> Path:
    """A reusable data dir under ``root`` for this corpus as the retriever's settings would index it."""
    from lab.retriever.evaluation import Dataset, index_fingerprint
    from retriever.settings import RetrieverSettings

    safe = "".join(ch if ch.isalnum() else "-" for ch in name)[:40]
    return root / f"{safe}-{index_fingerprint(Dataset(name, list(docs), {}, {}), RetrieverSettings())}"


class Runner(Protocol):
    async def ingest(self, docs: Sequence[DocumentIn], *, progress: bool) -> None: ...
    async def ask(self, question: str) -> Outcome: ...


async def run_items(runner: Runner, items: Sequence[QAItem], *, timeout_s: float, progress: bool) -> list[Outcome]:
    """Every question in turn (one at a time, so latencies are not queueing), with a progress bar."""
    outcomes = []
    for item in tqdm(items, desc="questions", unit="q", disable=not progress):
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                outcome = await runner.ask(item.question)
        except Exception as exc:  # a failed question is a scored failure, not a failed run
            outcome = Outcome(item, error=f"{type(exc).__name__}: {str(exc)[:200]}",
                              latency_ms=(time.perf_counter() - started) * 1000)
        outcome.item = item
        outcomes.append(outcome)
    return outcomes


# ---------------------------------------------------------------- in process


class InProcessRunner:
    """The embedded gateway's pipeline (every piece in this process), answers never cached."""

    def __init__(self, app: Any) -> None:
        self.app = app

    @classmethod
    @asynccontextmanager
    async def started(cls, data_dir: Path | None = None) -> AsyncIterator[InProcessRunner]:
        """Builds the embedded gateway over ``data_dir`` (a fresh temporary one when None); settings come
        from the environment as for ``ragd serve``, shared Redis excepted (this run's state stays its own)."""
        from gateway.app import create_app
        from gateway.settings import GatewaySettings

        with tempfile.TemporaryDirectory(prefix="ragd-eval-rag-") as tmp:
            saved = {k: os.environ.get(k) for k in ("RAGD_DATA_DIR", "RAGD_REDIS_URL", "RAGD_RETRIEVER_REDIS_URL")}
            os.environ["RAGD_DATA_DIR"] = str(data_dir or tmp)
            os.environ.pop("RAGD_REDIS_URL", None)
            os.environ.pop("RAGD_RETRIEVER_REDIS_URL", None)
            try:
                app = create_app(GatewaySettings(redis_url=None, demo_corpus=None))
                async with app.router.lifespan_context(app):
                    yield cls(app)
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    async def ingest(self, docs: Sequence[DocumentIn], *, progress: bool) -> None:
        settings = self.app.state.settings
        corpus = self.app.state.components.corpus
        bar = tqdm(total=len(docs), desc="ingest", unit="doc", disable=not progress)
        for start in range(0, len(docs), _INGEST_BATCH):
            batch = list(docs[start:start + _INGEST_BATCH])
            await corpus.add_documents(settings.default_tenant, settings.default_collection, batch)
            bar.update(len(batch))
        bar.close()

    async def ask(self, question: str) -> Outcome:
        from gateway.openai_schema import ChatCompletionRequest
        from gateway.pipeline import Answer
        from gateway.turns import to_turn

        settings = self.app.state.settings
        pipeline = self.app.state.pipeline
        body = ChatCompletionRequest.model_validate({"model": "ragd", "messages": [{"role": "user",
                                                                                    "content": question}]})
        turn = to_turn(body, tenant=settings.default_tenant, settings=settings, cache_control="no-cache, no-store")
        started = time.perf_counter()
        ttft: float | None = None
        prepared = await pipeline.prepare(turn)
        answer: Answer | None = None
        async for item in pipeline.stream(prepared):
            if isinstance(item, Answer):
                answer = item
            elif item.text and ttft is None:
                ttft = (time.perf_counter() - started) * 1000
        latency = (time.perf_counter() - started) * 1000
        assert answer is not None
        cited = [c.document_id for c in sorted(answer.citations, key=lambda c: c.index)]
        return Outcome(QAItem("", question, ()), answer.content, cited, answer.finish_reason, latency, ttft)


# ---------------------------------------------------------------- a running gateway


def collection_name(prefix: str, name: str, doc_ids: Sequence[str]) -> str:
    """``prefix``, ``name`` made safe for a collection name, and a digest of the documents: another document set
    gets another collection."""
    digest = hashlib.sha256("\x00".join(sorted(doc_ids)).encode()).hexdigest()[:10]
    safe = "".join(ch if ch.isalnum() else "-" for ch in name.lower())[:30].strip("-")
    return f"{prefix}-{safe}-{digest}"


async def ingest_over_rest(http: httpx.AsyncClient, collection: str, docs: Sequence[DocumentIn], *, progress: bool,
                           desc: str = "ingest") -> None:
    """``docs`` into ``collection`` of the gateway at ``http``'s base URL over its REST API (the collection is
    created unless it exists), in batches, with a progress bar."""
    created = await http.post("/collections", json={"name": collection})
    if created.status_code not in (201, 409):
        created.raise_for_status()
    bar = tqdm(total=len(docs), desc=desc, unit="doc", disable=not progress)
    for start in range(0, len(docs), _INGEST_BATCH):
        batch = [d.model_dump(include={"id", "title", "text"}) for d in docs[start:start + _INGEST_BATCH]]
        response = await http.post(f"/collections/{collection}/documents", json={"documents": batch})
        response.raise_for_status()
        bar.update(len(batch))
    bar.close()


class GatewayRunner:
    """A running ragd gateway: corpus over its REST API, questions through the official ``openai`` client."""

    def __init__(self, url: str, *, api_key: str, collection: str, timeout_s: float) -> None:
        import openai

        self.url = url.rstrip("/")
        self.collection = collection
        self.model = f"ragd:{collection}"
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s,
                                       headers={"authorization": f"Bearer {api_key}"})
        self._client = openai.AsyncOpenAI(base_url=self.url, api_key=api_key, timeout=timeout_s, max_retries=0)

    @staticmethod
    def collection_for(dataset_name: str, docs: Sequence[DocumentIn]) -> str:
        """A collection name per corpus (a different held-out share gets its own collection)."""
        return collection_name("eval", dataset_name, [str(d.id) for d in docs])

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._client.close()

    async def ingest(self, docs: Sequence[DocumentIn], *, progress: bool) -> None:
        await ingest_over_rest(self._http, self.collection, docs, progress=progress)

    async def ask(self, question: str) -> Outcome:
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        finish = ""
        citations: list[dict[str, Any]] = []
        stream = await self._client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": question}], stream=True, temperature=0.0,
            extra_headers={"cache-control": "no-cache, no-store"})
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    if ttft is None:
                        ttft = (time.perf_counter() - started) * 1000
                    parts.append(choice.delta.content)
                if choice.finish_reason:
                    finish = choice.finish_reason
            extra = chunk.model_extra or {}
            if extra.get("citations"):
                citations = list(extra["citations"])
        latency = (time.perf_counter() - started) * 1000
        cited = [str(c["document_id"]) for c in sorted(citations, key=lambda c: int(c.get("index", 0)))]
        return Outcome(QAItem("", question, ()), "".join(parts), cited, finish, latency, ttft)
