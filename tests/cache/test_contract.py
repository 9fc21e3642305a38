"""Contract tests every backend passes (in-process and Redis), with the real e5 embedder."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from cache import AnswerCache, CachedAnswer, CacheLookup, CacheSettings
from cache.keys import partition_key
from embeddings.protocol import Embedder
from services.contracts import GenerationParams
from tests.cache.conftest import SHARED_REDIS, scope

pytestmark = pytest.mark.anyio

QUESTION = "How do I delete my account permanently?"
PARAPHRASE = "How can I permanently delete my account?"
ANSWER = CachedAnswer(content="Annual plans are refundable within 30 days [1].", citations=[{"id": "doc-7", "n": 1}])


async def test_exact_hit_returns_the_stored_answer(cache: AnswerCache) -> None:
    assert (await cache.lookup(scope(), QUESTION)).outcome == "miss"
    assert await cache.store(scope(), QUESTION, ANSWER)
    hit = await cache.lookup(scope(), "  how do i DELETE my account   permanently ")
    assert hit.outcome == "exact"
    assert hit.answer is not None
    assert hit.answer.content == ANSWER.content and hit.answer.citations == ANSWER.citations
    assert hit.answer.question == QUESTION


async def test_paraphrase_is_a_semantic_hit(cache: AnswerCache) -> None:
    await cache.store(scope(), QUESTION, ANSWER)
    hit = await cache.lookup(scope(), PARAPHRASE)
    assert hit.outcome == "semantic" and hit.answer is not None and hit.answer.content == ANSWER.content


async def test_a_remembered_semantic_hit_is_exact_next_time_but_never_a_neighbour(cache: AnswerCache) -> None:
    await cache.store(scope(), QUESTION, ANSWER)
    hit = await cache.lookup(scope(), PARAPHRASE)
    assert hit.outcome == "semantic" and hit.answer is not None
    assert await cache.remember(scope(), PARAPHRASE, hit.answer)
    again = await cache.lookup(scope(), PARAPHRASE)
    assert again.outcome == "exact" and again.answer is not None and again.answer.content == ANSWER.content
    # the alias is no neighbour: the partition's index still holds the one question the answer was made for
    index = await cache._backend.index(partition_key(scope()), cache._embedder.dim)  # type: ignore[union-attr]
    assert len(index) == 1
    assert (await cache.lookup(scope(epoch="e2"), PARAPHRASE)).outcome == "miss"  # a new corpus epoch: gone


async def test_korean_paraphrase_is_a_semantic_hit(cache: AnswerCache) -> None:
    await cache.store(scope(), "비밀번호를 재설정하려면 어떻게 해야 하나요?", ANSWER)
    assert (await cache.lookup(scope(), "비밀번호 재설정 방법을 알려주세요.")).outcome == "semantic"


async def test_another_tenant_never_gets_the_entry(cache: AnswerCache) -> None:
    await cache.store(scope(tenant="tenant-a"), QUESTION, ANSWER)
    for question in (QUESTION, PARAPHRASE):
        assert (await cache.lookup(scope(tenant="tenant-b"), question)).outcome == "miss"
    assert (await cache.lookup(scope(tenant="tenant-a"), QUESTION)).outcome == "exact"


async def test_a_new_epoch_misses(cache: AnswerCache) -> None:
    await cache.store(scope(epoch="before-ingest"), QUESTION, ANSWER)
    assert (await cache.lookup(scope(epoch="after-ingest"), QUESTION)).outcome == "miss"
    assert (await cache.lookup(scope(epoch="after-ingest"), PARAPHRASE)).outcome == "miss"


async def test_other_generation_parameters_miss(cache: AnswerCache) -> None:
    await cache.store(scope(), QUESTION, ANSWER)
    assert (await cache.lookup(scope(params=GenerationParams(max_tokens=64)), QUESTION)).outcome == "miss"
    assert (await cache.lookup(scope(model="other-model"), QUESTION)).outcome == "miss"
    assert (await cache.lookup(scope(policy_version="p2"), QUESTION)).outcome == "miss"


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("Which medications are safe during pregnancy?", "Which medications are not safe during pregnancy?"),
        ("Which items can be recycled?", "Which items cannot be recycled?"),
        ("환불받을 수 있는 경우는 언제인가요?", "환불받을 수 없는 경우는 언제인가요?"),
        ("보험이 적용되는 치료는 무엇인가요?", "보험이 적용되지 않는 치료는 무엇인가요?"),
    ],
)
async def test_negation_misses(cache: AnswerCache, stored: str, asked: str) -> None:
    await cache.store(scope(), stored, ANSWER)
    assert (await cache.lookup(scope(), asked)).outcome == "miss"


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("박형식은 언제 데뷔했나요?", "박형식은 언제 대뷔했나요?"),  # a Korean typo
        ("How many species of ctenophores have been validated?",
         "How many speceis of ctenophores have been validated?"),  # a typo
    ],
)
async def test_typo_variants_are_semantic_hits(cache: AnswerCache, stored: str, asked: str) -> None:
    await cache.store(scope(), stored, ANSWER)
    assert (await cache.lookup(scope(), asked)).outcome == "semantic"


async def test_a_typo_under_the_threshold_is_compared_again_respelt(cache: AnswerCache) -> None:
    stored, asked = "전자화폐는 무엇을 가리키나요?", "전자화페는 무엇을 가리키나요?"  # e5 cosine ~0.90
    await cache.store(scope(), stored, ANSWER)
    hit = await cache.lookup(scope(), asked)
    assert hit.outcome == "semantic" and hit.similarity is not None
    assert hit.similarity >= cache.settings.threshold_for(asked)


async def test_without_the_respelt_comparison_the_typo_misses(settings: CacheSettings,
                                                              embedder: Embedder) -> None:
    cache = AnswerCache.create(settings.model_copy(update={"respell_floor": 1.0}), None, embedder)
    await cache.store(scope(), "전자화폐는 무엇을 가리키나요?", ANSWER)
    assert (await cache.lookup(scope(), "전자화페는 무엇을 가리키나요?")).outcome == "miss"


async def test_korean_questions_are_held_to_the_korean_threshold(settings: CacheSettings,
                                                                 embedder: Embedder) -> None:
    stored, asked = "빛의 속도는 얼마인가요?", "빛은 얼마나 빠르게 이동하나요?"  # e5 cosine ~0.955
    assert settings.threshold_for(asked) < settings.semantic_threshold == settings.threshold_for("How fast is light?")
    per_language = AnswerCache.create(settings, None, embedder)
    one_threshold = AnswerCache.create(settings.model_copy(update={"semantic_thresholds": {}}), None, embedder)
    for answer_cache in (per_language, one_threshold):
        await answer_cache.store(scope(), stored, ANSWER)
    hit = await per_language.lookup(scope(), asked)
    assert hit.outcome == "semantic" and hit.similarity is not None
    assert settings.threshold_for(asked) <= hit.similarity < settings.semantic_threshold
    assert (await one_threshold.lookup(scope(), asked)).outcome == "miss"


def test_per_language_thresholds_name_a_known_language() -> None:
    with pytest.raises(ValueError, match="per language"):
        CacheSettings(semantic_thresholds={"fr": 0.9})
    with pytest.raises(ValueError, match="per language"):
        CacheSettings(semantic_thresholds={"ko": 1.5})


async def test_a_korean_spacing_variant_is_an_exact_hit(cache: AnswerCache) -> None:
    await cache.store(scope(), "노아의 방주는 몇 층이었나요?", ANSWER)
    assert (await cache.lookup(scope(), "노아의방주는 몇층이었나요?")).outcome == "exact"


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How many poeple were aboard the AS-206 test flight?", "How many people were aboard the AS-208 test flight?"),
        ("What share of GDP does construction make up in developed countries?",
         "What share of GDP does construction make up in developing countries?"),
    ],
)
async def test_near_misses_with_typos_or_inflections_miss(cache: AnswerCache, stored: str, asked: str) -> None:
    await cache.store(scope(), stored, ANSWER)
    assert (await cache.lookup(scope(), asked)).outcome == "miss"


async def test_no_store_writes_nothing(cache: AnswerCache) -> None:
    assert not await cache.store(scope(), QUESTION, ANSWER, write=False)
    assert (await cache.lookup(scope(), QUESTION)).outcome == "miss"


async def test_incomplete_or_sampled_answers_are_not_stored(cache: AnswerCache) -> None:
    truncated = ANSWER.model_copy(update={"finish_reason": "length"})
    assert not await cache.store(scope(), QUESTION, truncated)
    assert not await cache.store(scope(params=GenerationParams(temperature=0.8)), QUESTION, ANSWER)
    assert not await cache.store(scope(), QUESTION, ANSWER.model_copy(update={"content": ""}))
    assert (await cache.lookup(scope(), QUESTION)).outcome == "miss"


async def test_no_cache_and_sampling_bypass_the_read(cache: AnswerCache) -> None:
    await cache.store(scope(), QUESTION, ANSWER)
    assert (await cache.lookup(scope(), QUESTION, read=False)) == CacheLookup("bypass")
    assert (await cache.lookup(scope(params=GenerationParams(temperature=0.9)), QUESTION)).outcome == "bypass"


async def test_lookup_result_carries_no_key_material(cache: AnswerCache) -> None:
    await cache.store(scope(), QUESTION, ANSWER)
    hit = await cache.lookup(scope(), QUESTION)
    assert {f.name for f in dataclasses.fields(hit)} == {"outcome", "answer", "similarity", "degraded"}
    assert hit.answer is not None and set(hit.answer.model_dump()) == set(CachedAnswer.model_fields)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_partition_is_bounded_with_eviction(backend: str, namespace: str, embedder: Embedder) -> None:
    settings = CacheSettings(namespace=namespace, max_entries_per_partition=3, semantic=False, redis_timeout_s=0.5)
    small = AnswerCache.create(settings, SHARED_REDIS if backend == "redis" else None, embedder)
    for i in range(5):
        assert await small.store(scope(), f"question number {i}", ANSWER)
    outcomes = [(await small.lookup(scope(), f"question number {i}")).outcome for i in range(5)]
    assert outcomes == ["miss", "miss", "exact", "exact", "exact"]
    await small.close()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_entries_expire_after_ttl(backend: str, namespace: str, embedder: Embedder) -> None:
    settings = CacheSettings(namespace=namespace, ttl_s=1, redis_timeout_s=0.5)
    short = AnswerCache.create(settings, SHARED_REDIS if backend == "redis" else None, embedder)
    await short.store(scope(), QUESTION, ANSWER)
    assert (await short.lookup(scope(), QUESTION)).outcome == "exact"
    await asyncio.sleep(1.2)
    assert (await short.lookup(scope(), QUESTION)).outcome == "miss"
    assert (await short.lookup(scope(), PARAPHRASE)).outcome == "miss"
    await short.close()


async def test_reclaim_frees_older_epochs_only(cache: AnswerCache) -> None:
    await cache.store(scope(epoch="old"), QUESTION, ANSWER)
    await cache.store(scope(epoch="old", model="m2"), QUESTION, ANSWER)
    await cache.store(scope(epoch="new"), QUESTION, ANSWER)
    await cache.store(scope(epoch="old", collection="faq"), QUESTION, ANSWER)
    await cache.store(scope(epoch="old", tenant="someone-else"), QUESTION, ANSWER)
    assert await cache.reclaim("acme", "docs", "new") == 2
    assert (await cache.lookup(scope(epoch="old"), QUESTION)).outcome == "miss"
    assert (await cache.lookup(scope(epoch="old"), PARAPHRASE)).outcome == "miss"
    assert (await cache.lookup(scope(epoch="new"), QUESTION)).outcome == "exact"
    assert (await cache.lookup(scope(epoch="old", collection="faq"), QUESTION)).outcome == "exact"
    assert (await cache.lookup(scope(epoch="old", tenant="someone-else"), QUESTION)).outcome == "exact"
    assert await cache.reclaim("acme", "docs", "new") == 0


async def test_ready_after_warm_up(cache: AnswerCache) -> None:
    assert (await cache.ready())["embedder"] is False  # the embedder loads in warm_up
    await cache.warm_up()
    assert await cache.ready() == {"embedder": True, "store": True}
