"""The cache's temperature policy: the clients' default settings get hits, hotter sampling bypasses, and
the key holds exactly the parameters that change an answer.

What the clients send by default (read from their installed sources): LangChain's ``ChatOpenAI``
(langchain-openai 1.8) and Open WebUI send no temperature (ragd's default, 0); LlamaIndex's ``OpenAI`` /
``OpenAILike`` send ``temperature=0.1`` (llama_index.core.constants.DEFAULT_TEMPERATURE)."""

from __future__ import annotations

import pytest

from cache import AnswerCache, CachedAnswer, CacheSettings, exact_key, partition_key
from services.contracts import GenerationParams
from tests.cache.conftest import scope

pytestmark = pytest.mark.anyio

QUESTION = "When was the Aurora Lighthouse built?"
ANSWER = CachedAnswer(content="It was built in 1871 [1].", citations=[{"index": 1}])
LLAMAINDEX_DEFAULT = GenerationParams(temperature=0.1)


def test_the_default_policy_caches_up_to_a_low_temperature() -> None:
    assert CacheSettings().max_temperature >= LLAMAINDEX_DEFAULT.temperature


async def test_llamaindex_default_temperature_is_stored_and_hit(cache: AnswerCache) -> None:
    assert await cache.store(scope(params=LLAMAINDEX_DEFAULT), QUESTION, ANSWER)
    hit = await cache.lookup(scope(params=LLAMAINDEX_DEFAULT), QUESTION)
    assert hit.outcome == "exact" and hit.answer is not None and hit.answer.content == ANSWER.content


async def test_hot_sampling_bypasses_and_stores_nothing(cache: AnswerCache) -> None:
    hot = GenerationParams(temperature=0.8)
    assert not await cache.store(scope(params=hot), QUESTION, ANSWER)
    assert (await cache.lookup(scope(params=hot), QUESTION)).outcome == "bypass"


async def test_a_sampled_answer_is_not_served_to_a_greedy_request(cache: AnswerCache) -> None:
    assert await cache.store(scope(params=LLAMAINDEX_DEFAULT), QUESTION, ANSWER)
    assert (await cache.lookup(scope(params=GenerationParams()), QUESTION)).outcome == "miss"
    assert (await cache.lookup(scope(params=GenerationParams(temperature=0.1, seed=7)), QUESTION)).outcome == "miss"


async def test_greedy_requests_share_entries_whatever_their_top_p_and_seed(cache: AnswerCache) -> None:
    assert await cache.store(scope(params=GenerationParams()), QUESTION, ANSWER)
    for params in (GenerationParams(top_p=0.9), GenerationParams(seed=42), GenerationParams(top_p=0.5, seed=1)):
        assert (await cache.lookup(scope(params=params), QUESTION)).outcome == "exact"
    # control: what greedy decoding does read still separates entries
    for params in (GenerationParams(max_tokens=64), GenerationParams(stop=("\n",))):
        assert (await cache.lookup(scope(params=params), QUESTION)).outcome == "miss"


def test_keys_follow_the_parameters_that_change_the_answer() -> None:
    greedy, nucleus = scope(params=GenerationParams()), scope(params=GenerationParams(top_p=0.9, seed=3))
    assert exact_key(greedy, QUESTION) == exact_key(nucleus, QUESTION)
    assert partition_key(greedy) == partition_key(nucleus)
    sampled_a = scope(params=GenerationParams(temperature=0.2, top_p=0.9))
    sampled_b = scope(params=GenerationParams(temperature=0.2, top_p=0.5))
    assert partition_key(sampled_a) != partition_key(sampled_b)
