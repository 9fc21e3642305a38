"""The extractive generator and the backend registry: no model, cited sentences, always finished."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from gateway.pipeline import ChatTurn, Pipeline
from generator.backends import BACKENDS, ByLanguageGenerator, build_generator
from generator.extractive import ExtractiveGenerator
from generator.settings import GeneratorSettings
from services.contracts import (
    AnswerContext,
    ChatMessage,
    Completion,
    Delta,
    GenerationParams,
    GuardCheckRequest,
    GuardDecision,
    ScoredChunk,
)
from services.epochs import MemoryEpochStore

SOURCES = [
    ScoredChunk(chunk_id="c1", doc_id="tea", title="Copperleaf tea", score=1.0,
                text="Copperleaf tea is grown on terraces above 900 metres. Most of the harvest is sold to "
                     "cooperatives, and a small share is exported to Japan."),
    ScoredChunk(chunk_id="c2", doc_id="lighthouse", title="Aurora lighthouse", score=0.5,
                text="# Aurora lighthouse\n\nThe Aurora lighthouse stands on the northern cape of Vell Island. "
                     "It was built in 1871 by the harbour board. Its lamp is visible for 22 nautical miles."),
    ScoredChunk(chunk_id="c3", doc_id="festival", title="달빛 축제", score=0.2,
                text="달빛 축제는 매년 9월 보름 무렵 강변 공원에서 열린다. 2019년에는 약 12만 명이 방문했다."),
]
PARAMS = GenerationParams(max_tokens=256)


def _context(question: str, language: str = "en") -> AnswerContext:
    return AnswerContext(question=question, language=language, sources=SOURCES)  # type: ignore[arg-type]


def test_it_answers_with_the_sentence_that_covers_the_question_cited_by_its_source_number() -> None:
    generator = ExtractiveGenerator()
    text, finish = generator.answer(_context("When was the Aurora lighthouse built?"), 256)
    # "It" points back to the sentence before, which says what "it" is: that sentence leads, cited too
    assert text.startswith("The Aurora lighthouse stands on the northern cape of Vell Island [2]. It was built in "
                           "1871 by the harbour board [2].") and finish == "stop"
    text, _ = generator.answer(_context("Which country buys a small share of Copperleaf tea?"), 256)
    assert "exported to Japan [1]." in text


def test_a_sentence_that_points_back_is_answered_after_the_sentence_it_leans_on() -> None:
    epoch = ScoredChunk(chunk_id="e", doc_id="epoch", title="Corpus epoch", score=1.0,
                        text="Every collection has a corpus epoch. When a document changes, the epoch changes, and all "
                             "older answers become unreachable at once. This is how ragd guarantees that the cache "
                             "never serves a stale answer.")
    context = AnswerContext(question="How does ragd keep cached answers fresh after documents change?",
                            sources=[epoch])
    text, _ = ExtractiveGenerator().answer(context, 256)
    assert text == ("When a document changes, the epoch changes, and all older answers become unreachable at once "
                    "[1]. This is how ragd guarantees that the cache never serves a stale answer [1].")
    singer = ScoredChunk(chunk_id="k", doc_id="singer", title="윤상", score=1.0,
                         text="윤상은 1987년 김완선의 백밴드에서 활동했다. "
                              "그는 1990년 데뷔 앨범으로 솔로 가수가 되었다.")
    text, _ = ExtractiveGenerator().answer(AnswerContext(question="윤상은 언제 솔로 가수로 데뷔했나요?", language="ko",
                                                          sources=[singer]), 256)
    assert text.startswith("윤상은 1987년 김완선의 백밴드에서 활동했다 [1]. 그는 1990년 데뷔 앨범으로")
    # a sentence that stands on its own gets no lead
    text, _ = ExtractiveGenerator().answer(_context("Which country buys a small share of Copperleaf tea?"), 256)
    assert not text.startswith("Copperleaf tea is grown")


def test_korean_questions_match_by_character_bigrams_despite_particles() -> None:
    text, finish = ExtractiveGenerator().answer(_context("달빛 축제는 어디에서 열리나요?", "ko"), 256)
    assert text.startswith("달빛 축제는 매년 9월 보름 무렵 강변 공원에서 열린다 [3].") and finish == "stop"


def test_headings_are_not_answers_and_every_sentence_is_copied_from_a_source() -> None:
    text, _ = ExtractiveGenerator().answer(_context("Aurora lighthouse"), 256)
    assert not text.startswith("#")
    for sentence in text.replace("[1]", "").replace("[2]", "").replace("[3]", "").split(". "):
        assert sentence.strip(" .") in " ".join(s.text for s in SOURCES).replace("  ", " ")


def test_it_streams_in_pieces_and_finishes_with_stop() -> None:
    async def collect() -> list[Delta]:
        return [d async for d in ExtractiveGenerator().stream([], PARAMS, _context("How far is the lamp visible?"))]

    deltas = asyncio.run(collect())
    assert len(deltas) > 2 and deltas[-1].finish_reason == "stop" and deltas[-1].usage is not None
    assert "22 nautical miles [2]" in "".join(d.text for d in deltas[:-1])


def test_a_tiny_max_tokens_keeps_one_sentence_and_says_length_only_when_that_does_not_fit() -> None:
    generator = ExtractiveGenerator()
    one, finish = generator.answer(_context("When was the Aurora lighthouse built?"), 12)
    assert finish == "stop" and one.count("[") == 1
    cut, finish = generator.answer(_context("When was the Aurora lighthouse built?"), 3)
    assert finish == "length" and len(cut) <= 12


def test_without_context_it_gives_an_empty_completion_and_no_question_means_no_answer() -> None:
    generator = ExtractiveGenerator()
    assert asyncio.run(generator.complete([ChatMessage(role="user", content="rewrite this")], PARAMS)).text == ""
    empty = AnswerContext(question="When?", sources=[])
    assert asyncio.run(generator.complete([], PARAMS, empty)) == Completion(text="", finish_reason="stop",
                                                                            usage=generator._usage([], ""))


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name

    async def complete(self, messages: object, params: object, context: object = None) -> Completion:
        return Completion(text=self.name)

    async def stream(self, messages: object, params: object, context: object = None):  # type: ignore[no-untyped-def]
        yield Delta(text=self.name)


def test_by_language_routes_answers_by_the_question_language_and_rewrites_to_the_model() -> None:
    router = ByLanguageGenerator({"ko": _Named("extractive")}, _Named("llm"))  # type: ignore[dict-item,arg-type]
    assert asyncio.run(router.complete([], PARAMS, _context("질문", "ko"))).text == "extractive"
    assert asyncio.run(router.complete([], PARAMS, _context("question"))).text == "llm"
    assert asyncio.run(router.complete([], PARAMS)).text == "llm"


def test_the_registry_builds_the_extractive_backend_without_starting_a_server() -> None:
    assert set(BACKENDS) == {"llm", "extractive", "by-language"}

    async def build() -> object:
        async with AsyncExitStack() as stack:
            return await build_generator(GeneratorSettings(backend="extractive"), url=None, model="m", stack=stack)

    built = asyncio.run(build())
    assert isinstance(built.generator, ExtractiveGenerator) and built.packer is None  # type: ignore[attr-defined]


def test_auto_is_the_model_when_a_generator_url_is_set_and_extraction_otherwise() -> None:
    from generator.client import OpenAIGenerator

    async def build(url: str | None) -> object:
        async with AsyncExitStack() as stack:
            return await build_generator(GeneratorSettings(), url=url, model="m", stack=stack)

    assert GeneratorSettings().backend == "auto"
    assert isinstance(asyncio.run(build(None)).generator, ExtractiveGenerator)  # type: ignore[attr-defined]
    remote = asyncio.run(build("http://127.0.0.1:9/v1"))
    assert isinstance(remote.generator, OpenAIGenerator) and remote.packer is not None  # type: ignore[attr-defined]


class _PassingGuardFake:
    """Rails that pass every text (the test is about routing, not the rails)."""

    policy_version = "fake"

    async def check(self, request: GuardCheckRequest) -> GuardDecision:
        return GuardDecision(action="pass", text=request.text)

    async def ready(self) -> dict[str, bool]:
        return {"fake": True}


def test_a_plain_turn_reaches_the_model_not_the_extractive_route_of_its_language() -> None:
    """``ragd-chat`` (no retrieval) has no sources to extract from: the router sends it to the model."""
    router = ByLanguageGenerator({"en": ExtractiveGenerator(), "ko": ExtractiveGenerator()},  # type: ignore[dict-item]
                                 _Named("hello from the model"))  # type: ignore[arg-type]
    pipeline = Pipeline(retriever=None, generator=router, guard=_PassingGuardFake(),  # type: ignore[arg-type]
                        epochs=MemoryEpochStore())

    async def ask(question: str) -> str:
        prepared = await pipeline.prepare(ChatTurn(tenant="t", collection="c", model="ragd-chat", question=question,
                                                   retrieval=False))
        return (await pipeline.answer(prepared)).content

    assert asyncio.run(ask("Say hello in one word.")) == "hello from the model"
    assert asyncio.run(ask("한 단어로 인사해 주세요.")) == "hello from the model"
