"""Evidence-checked semantic hits through the real pipeline: real retriever (e5 + BM25 over a small
corpus), real answer cache on the shared Redis, real input rails. Only the generator is a fake (named
so): it always finishes, so every answer is cacheable, and it counts its calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from cache import AnswerCache, CachedAnswer, CacheScope, CacheSettings
from cache.evidence import EvidenceCheck, agreement
from embeddings.protocol import Embedder
from gateway.components import cache_scope_factory
from gateway.pipeline import ChatTurn, Pipeline
from generator.abstention import Abstainer
from guardrails.engine import LocalGuard
from guardrails.policy import parse_policy
from guardrails.settings import GuardrailsSettings
from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from services.contracts import (
    AnswerContext,
    ChatMessage,
    CollectionConfig,
    Completion,
    Delta,
    DocumentIn,
    GenerationParams,
    GuardCheckRequest,
    GuardDecision,
    RetrieveRequest,
    RetrieveResponse,
    Usage,
)
from services.epochs import MemoryEpochStore
from services.telemetry import CACHE_SEMANTIC_REJECTED
from tests.cache.conftest import SHARED_REDIS

pytestmark = pytest.mark.anyio

DOCS = [
    DocumentIn(id="harbor", title="Harbor rules",
               text="The Zentra harbor opens at six in the morning and closes at ten in the evening. Ships longer "
                    "than 80 metres need a pilot."),
    DocumentIn(id="ferry", title="Ferry",
               text="The Zentra ferry to Mirel island leaves every two hours from pier four and costs 12 euros."),
    DocumentIn(id="lighthouse", title="Lighthouse",
               text="The Aurora lighthouse on Veldra island was built in 1871 from grey granite."),
]
STORED = "When does the Zentra harbor open?"
PARAPHRASE = "What time does the Zentra harbor open?"
NEAR_MISS = "When does the Zentra ferry leave?"  # another document answers it


class FakeStopGenerator:
    """Answers every prompt with one sentence citing source 1 and finishes ("stop"); counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Completion:
        raise AssertionError("no follow-up rewrite in these tests")

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams,
                     context: AnswerContext | None = None) -> AsyncIterator[Delta]:
        self.calls += 1
        yield Delta(text=f"Answer {self.calls} [1].")
        yield Delta(finish_reason="stop", usage=Usage(prompt_tokens=10, completion_tokens=4, total_tokens=14))


class CountingRetriever:
    """The real retriever, with its retrieve calls counted (a retrieval must never run twice per turn)."""

    def __init__(self, inner: LocalRetriever, started: asyncio.Event | None = None) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.started = started

    async def retrieve(self, request: RetrieveRequest) -> RetrieveResponse:
        self.calls.append(request.query)
        if self.started is not None:
            self.started.set()
        return await self.inner.retrieve(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def corpus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[LocalRetriever, MemoryEpochStore]]:
    epochs = MemoryEpochStore()
    settings = RetrieverSettings(data_dir=tmp_path_factory.mktemp("evidence") / "state", redis_url=None)
    retriever = LocalRetriever(settings, epochs)
    await retriever.warm_up()
    await retriever.create_collection("acme", "docs", CollectionConfig())
    await retriever.add_documents("acme", "docs", DOCS)
    yield retriever, epochs
    await retriever.aclose()


@pytest.fixture(scope="module")
async def guard() -> LocalGuard:
    policy = yaml.safe_load(GuardrailsSettings().policy_path.read_text(encoding="utf-8"))
    policy["input"]["topics"]["enabled"] = False
    rails = LocalGuard(parse_policy(policy), GuardrailsSettings())
    await rails.warm_up()
    return rails


@pytest.fixture
def rejected_before() -> Iterator[dict[str, float]]:
    yield {reason: CACHE_SEMANTIC_REJECTED.labels(reason)._value.get() for reason in ("evidence", "no_evidence")}


def _pipeline(corpus: tuple[LocalRetriever, MemoryEpochStore], guard: LocalGuard, cache: AnswerCache,
              abstainer: Abstainer | None = None) -> tuple[Pipeline, CountingRetriever, FakeStopGenerator]:
    retriever, generator = CountingRetriever(corpus[0]), FakeStopGenerator()
    pipeline = Pipeline(retriever=retriever, generator=generator, guard=guard, epochs=corpus[1], cache=cache,
                        scope_factory=cache_scope_factory(CacheScope), abstainer=abstainer)
    return pipeline, retriever, generator


def _turn(question: str) -> ChatTurn:
    return ChatTurn(tenant="acme", collection="docs", model="ragd", question=question, top_k=1)


async def _ask(pipeline: Pipeline, question: str) -> tuple[str, str]:
    prepared = await pipeline.prepare(_turn(question))
    answer = await pipeline.answer(prepared)
    return prepared.cache, answer.content


async def test_a_paraphrase_whose_retrieval_agrees_is_served_and_exact_hits_never_retrieve(
    corpus: tuple[LocalRetriever, MemoryEpochStore], guard: LocalGuard, embedder: Embedder, namespace: str
) -> None:
    cache = AnswerCache.create(CacheSettings(namespace=namespace, redis_timeout_s=0.5), SHARED_REDIS, embedder)
    pipeline, retriever, generator = _pipeline(corpus, guard, cache)
    outcome, first = await _ask(pipeline, STORED)
    assert (outcome, generator.calls, len(retriever.calls)) == ("miss", 1, 1)
    stored = await cache.lookup_exact(pipeline._cache_scope(_turn(STORED), await corpus[1].get("acme", "docs")),
                                      STORED)
    assert stored is not None and stored.answer is not None
    citation = stored.answer.citations[0]
    assert citation["document_id"] == "harbor" and stored.answer.retrieved_chunks == [citation["chunk_id"]]

    outcome, served = await _ask(pipeline, PARAPHRASE)
    assert (outcome, served) == ("semantic", first)
    assert generator.calls == 1 and retriever.calls == [STORED, PARAPHRASE]  # retrieved once, to verify

    outcome, again = await _ask(pipeline, STORED)
    assert (outcome, again) == ("exact", first)
    assert len(retriever.calls) == 2  # the exact hit paid for no retrieval
    await cache.close()


async def test_a_near_miss_whose_retrieval_disagrees_is_refused_and_answered_fresh(
    corpus: tuple[LocalRetriever, MemoryEpochStore], guard: LocalGuard, embedder: Embedder, namespace: str,
    rejected_before: dict[str, float],
) -> None:
    # threshold and guards loose enough that the near miss reaches the evidence check
    settings = CacheSettings(namespace=namespace, redis_timeout_s=0.5, guards=False, semantic_threshold=0.80)
    cosine = float(embedder.embed_queries([STORED])[0] @ embedder.embed_queries([NEAR_MISS])[0])
    assert cosine >= settings.semantic_threshold, cosine
    cache = AnswerCache.create(settings, SHARED_REDIS, embedder)
    pipeline, retriever, generator = _pipeline(corpus, guard, cache)
    await _ask(pipeline, STORED)

    outcome, fresh = await _ask(pipeline, NEAR_MISS)
    assert outcome == "miss" and fresh.startswith("Answer 2")
    assert generator.calls == 2
    assert retriever.calls == [STORED, NEAR_MISS]  # the check's retrieval is the one generation used
    assert CACHE_SEMANTIC_REJECTED.labels("evidence")._value.get() == rejected_before["evidence"] + 1

    outcome, _ = await _ask(pipeline, PARAPHRASE)  # the control: the same cache serves a real paraphrase
    assert outcome == "semantic"
    await cache.close()


async def test_an_entry_without_evidence_is_never_served_semantically(
    corpus: tuple[LocalRetriever, MemoryEpochStore], guard: LocalGuard, embedder: Embedder, namespace: str,
    rejected_before: dict[str, float],
) -> None:
    cache = AnswerCache.create(CacheSettings(namespace=namespace, redis_timeout_s=0.5), SHARED_REDIS, embedder)
    pipeline, retriever, generator = _pipeline(corpus, guard, cache)
    scope = pipeline._cache_scope(_turn(STORED), await corpus[1].get("acme", "docs"))
    assert await cache.store(scope, STORED, CachedAnswer(content="Stored without evidence."))
    outcome, _ = await _ask(pipeline, PARAPHRASE)
    assert outcome == "miss" and generator.calls == 1 and retriever.calls == [PARAPHRASE]
    assert CACHE_SEMANTIC_REJECTED.labels("no_evidence")._value.get() == rejected_before["no_evidence"] + 1
    outcome, _ = await _ask(pipeline, STORED)  # the control: its exact hit is served
    assert outcome == "exact"
    await cache.close()


async def test_a_decline_is_stored_with_its_retrieval_so_a_rewording_that_retrieves_alike_is_declined_from_cache(
    corpus: tuple[LocalRetriever, MemoryEpochStore], guard: LocalGuard, embedder: Embedder, namespace: str
) -> None:
    declines = Abstainer(weights={"en": {"bias": 0.0}}, thresholds={"en": 1.0},  # every question is declined
                         texts={"en": "The documents do not cover this.", "ko": "문서에 없습니다."})
    cache = AnswerCache.create(CacheSettings(namespace=namespace, redis_timeout_s=0.5), SHARED_REDIS, embedder)
    pipeline, retriever, generator = _pipeline(corpus, guard, cache, declines)
    outcome, first = await _ask(pipeline, STORED)
    assert (outcome, first, generator.calls) == ("miss", "The documents do not cover this.", 0)
    stored = await cache.lookup_exact(pipeline._cache_scope(_turn(STORED), await corpus[1].get("acme", "docs")),
                                      STORED)
    assert stored is not None and stored.answer is not None
    assert stored.answer.citations == [] and stored.answer.cited_chunks == []
    assert len(stored.answer.retrieved_chunks) == 1  # the evidence the decline was made on (top_k 1)
    outcome, served = await _ask(pipeline, PARAPHRASE)
    assert (outcome, served) == ("semantic", first) and retriever.calls == [STORED, PARAPHRASE]
    # the control: a question whose retrieval finds another document is not served that decline
    loose = AnswerCache.create(CacheSettings(namespace=namespace, redis_timeout_s=0.5, guards=False,
                                             semantic_threshold=0.80), SHARED_REDIS, embedder)
    other, _, _ = _pipeline(corpus, guard, loose, declines)
    outcome, _ = await _ask(other, NEAR_MISS)
    assert outcome == "miss"
    await cache.close()
    await loose.close()


def test_agreement_counts_cited_chunks_and_top_k_overlap() -> None:
    answer = CachedAnswer(content="x", cited_chunks=["b"], retrieved_chunks=["a", "b", "c", "d"])
    found = agreement(answer, ["b", "c", "x", "y"])
    assert found is not None and (found.cited, found.overlap) == (1.0, 0.5)
    unnamed = CachedAnswer(content="x", retrieved_chunks=["a", "b"])  # named no source: stands on its best
    assert agreement(unnamed, ["b", "a"]) is not None and agreement(unnamed, ["b", "c"]).cited == 0.0  # type: ignore[union-attr]
    assert agreement(CachedAnswer(content="x"), ["a"]) is None
    check = EvidenceCheck(min_cited=1.0, min_overlap=0.5)
    assert check.reason(answer, ["b", "c", "x", "y"]) is None
    assert check.reason(answer, ["b", "x", "y", "z"]) == "evidence"
    assert check.reason(CachedAnswer(content="x"), ["a"]) == "no_evidence"


def test_the_packaged_pair_files_parse(tmp_path: Path) -> None:
    from lab.cache.eval_cli import DEFAULT_PAIRS
    from lab.cache.evaluation import load_pairs

    pairs = load_pairs(*DEFAULT_PAIRS)
    assert len({p.id for p in pairs}) == len(pairs)
    assert {p.corpus for p in pairs} >= {"", "xquad_en", "korquad_v1_dev"}


class RailsAfterRetrieval:
    """The real input rails, answering only once the question's retrieval has been asked for (or after
    a bound, noting that it had not been): shows what runs beside the rails."""

    def __init__(self, inner: LocalGuard, started: asyncio.Event) -> None:
        self.inner = inner
        self.started = started
        self.retrieval_began_during_rails: list[bool] = []

    async def check(self, request: GuardCheckRequest) -> GuardDecision:
        if request.kind == "input":
            try:
                await asyncio.wait_for(self.started.wait(), timeout=5)
                self.retrieval_began_during_rails.append(True)
            except TimeoutError:
                self.retrieval_began_during_rails.append(False)
        return await self.inner.check(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_missing_question_retrieves_beside_the_input_rails_once(
    corpus: tuple[LocalRetriever, MemoryEpochStore], guard: LocalGuard, embedder: Embedder, namespace: str
) -> None:
    started = asyncio.Event()
    rails = RailsAfterRetrieval(guard, started)
    cache = AnswerCache.create(CacheSettings(namespace=namespace, redis_timeout_s=0.5), SHARED_REDIS, embedder)
    retriever, generator = CountingRetriever(corpus[0], started), FakeStopGenerator()
    pipeline = Pipeline(retriever=retriever, generator=generator, guard=rails,  # type: ignore[arg-type]
                        epochs=corpus[1], cache=cache, scope_factory=cache_scope_factory(CacheScope))
    assert (await _ask(pipeline, STORED))[0] == "miss"
    started.clear()
    assert (await _ask(pipeline, PARAPHRASE))[0] == "semantic"
    assert rails.retrieval_began_during_rails == [True, True]
    assert retriever.calls == [STORED, PARAPHRASE]  # once per question, for the check and the generation alike

    assert (await _ask(pipeline, STORED))[0] == "exact"
    assert len(retriever.calls) == 2  # an exact hit retrieves nothing, not even ahead
    await cache.close()


def test_the_lead_source_must_rank_as_high_as_the_cached_question_ranked_it_and_every_cited_one_be_retrieved() -> None:
    check = EvidenceCheck(min_cited=1.0, min_overlap=0.0, cited_rank=2)
    # an answer from its question's first and third sources: the new question ranks the first one first and
    # retrieves the third; asking the third to be in its first two would refuse the cached question itself
    both = CachedAnswer(content="x", cited_chunks=["a", "c"], retrieved_chunks=["a", "b", "c", "d"])
    assert check.reason(both, ["a", "b", "c", "d"]) is None
    assert check.reason(both, ["b", "a", "x", "c"]) is None
    assert check.reason(both, ["x", "y", "a", "c"]) == "evidence"  # the lead source fell out of the first two
    assert check.reason(both, ["a", "b", "x", "y"]) == "evidence"  # a cited source is not retrieved at all
    # an answer from its question's third source only: the new question must rank it third or better
    third = CachedAnswer(content="x", cited_chunks=["c"], retrieved_chunks=["a", "b", "c", "d"])
    assert check.reason(third, ["a", "b", "c", "d"]) is None and check.reason(third, ["c", "x", "y", "z"]) is None
    assert check.reason(third, ["a", "b", "d", "c"]) == "evidence"
    # an answer that named no source stands on its question's best chunk, within the first two
    unnamed = CachedAnswer(content="x", retrieved_chunks=["a", "b", "c", "d"])
    assert check.reason(unnamed, ["x", "a", "y", "z"]) is None
    assert check.reason(unnamed, ["x", "y", "a", "z"]) == "evidence"
