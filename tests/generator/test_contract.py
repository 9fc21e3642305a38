"""One Generator contract, every backend the registry builds: the extractive backend in process, the
OpenAI client over HTTP to a real local llama.cpp server (SmolLM2, the CPU stand-in for vLLM), and the
by-language router (Korean to extraction, the rest to the server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack

import pytest

from generator.backends import build_generator
from generator.client import OpenAIGenerator
from generator.llamacpp import LlamaCppServer, free_port
from generator.prompt import build_messages, rewrite_messages
from generator.settings import GeneratorSettings
from services.contracts import AnswerContext, ChatMessage, Completion, Delta, GenerationParams, ScoredChunk
from services.errors import DependencyError
from services.protocols import Generator

Scenario = Callable[[Generator], Awaitable[None]]

EN = AnswerContext(question="When are refunds paid?", language="en", sources=[
    ScoredChunk(chunk_id="refunds#0", doc_id="refunds", title="Refunds", score=1.0,
                text="Refunds are paid within 14 days of the request. Store credit is issued at once."),
    ScoredChunk(chunk_id="shipping#0", doc_id="shipping", title="Shipping", score=0.5,
                text="Orders ship on weekdays. Express delivery takes two days."),
])
KO = AnswerContext(question="환불은 언제 지급되나요?", language="ko", sources=[
    ScoredChunk(chunk_id="refunds-ko#0", doc_id="refunds-ko", title="환불", score=1.0,
                text="환불은 요청 후 14일 이내에 지급됩니다. 적립금은 즉시 지급됩니다."),
])
CONTEXTS = [pytest.param(EN, id="en"), pytest.param(KO, id="ko")]
GREEDY = GenerationParams(temperature=0.0, max_tokens=16, seed=7)


def _messages(context: AnswerContext) -> list[ChatMessage]:
    return build_messages(context.question, context.sources, language=context.language)


@pytest.fixture(scope="module")
def llamacpp() -> Iterator[LlamaCppServer]:
    # one thread: llama.cpp's worker threads spin, and on a busy test machine more of them only wait longer
    server = LlamaCppServer(GeneratorSettings(n_ctx=2048, n_parallel=1, threads=1))
    server.start()  # the packaged SmolLM2-135M: up within seconds, so this runs in the default tier
    yield server
    server.stop()


@pytest.fixture(params=["extractive", "llm", "by-language"])
def check(request: pytest.FixtureRequest, llamacpp: LlamaCppServer) -> Callable[[Scenario], None]:
    backend = request.param
    settings = GeneratorSettings(backend=backend, language_backends={"ko": "extractive"})
    url = None if backend == "extractive" else llamacpp.base_url

    def run(scenario: Scenario) -> None:
        async def go() -> None:
            async with AsyncExitStack() as stack:
                built = await build_generator(settings, url=url, model="ragd-llm", stack=stack)
                assert isinstance(built.generator, Generator)
                await scenario(built.generator)

        asyncio.run(go())

    return run


async def _streamed(generator: Generator, context: AnswerContext | None, messages: list[ChatMessage],
                    params: GenerationParams) -> list[Delta]:
    stream: AsyncIterator[Delta] = generator.stream(messages, params, context)
    return [delta async for delta in stream]


def test_ready(check: Callable[[Scenario], None]) -> None:
    async def scenario(generator: Generator) -> None:
        checks = await generator.ready()
        assert checks and all(checks.values()), checks

    check(scenario)


@pytest.mark.parametrize("context", CONTEXTS)
def test_stream_and_complete_answer_alike_within_max_tokens(check: Callable[[Scenario], None],
                                                            context: AnswerContext) -> None:
    async def scenario(generator: Generator) -> None:
        deltas = await _streamed(generator, context, _messages(context), GREEDY)
        assert deltas and deltas[-1].finish_reason in ("stop", "length")
        assert all(d.finish_reason is None for d in deltas[:-1])
        usage = deltas[-1].usage
        assert usage is not None and 0 < usage.completion_tokens <= GREEDY.max_tokens
        completion = await generator.complete(_messages(context), GREEDY, context)
        assert isinstance(completion, Completion)
        assert completion.text.strip() and "\ufffd" not in completion.text
        assert 0 < completion.usage.completion_tokens <= GREEDY.max_tokens and completion.usage.prompt_tokens > 0
        assert "".join(d.text for d in deltas) == completion.text  # greedy decoding: the same answer either way
        assert deltas[-1].finish_reason == completion.finish_reason

    check(scenario)


def test_max_tokens_cuts_the_answer_with_finish_reason_length(check: Callable[[Scenario], None]) -> None:
    async def scenario(generator: Generator) -> None:
        short = GREEDY.model_copy(update={"max_tokens": 2})
        completion = await generator.complete(_messages(EN), short, EN)
        assert completion.finish_reason == "length" and completion.text
        assert completion.usage.completion_tokens <= 2
        deltas = await _streamed(generator, EN, _messages(EN), short)
        assert deltas[-1].finish_reason == "length"

    check(scenario)


def test_a_call_without_context_is_answered(check: Callable[[Scenario], None]) -> None:
    """A follow-up rewrite: no sources, the model alone (the extractive backend answers empty)."""

    async def scenario(generator: Generator) -> None:
        history = [ChatMessage(role="user", content="When are refunds paid?"),
                   ChatMessage(role="assistant", content="Within 14 days [1].")]
        completion = await generator.complete(rewrite_messages(history, "and store credit?"), GREEDY)
        assert isinstance(completion, Completion) and completion.finish_reason in ("stop", "length")

    check(scenario)


def test_an_unreachable_server_is_a_dependency_error_and_not_ready() -> None:
    async def run() -> None:
        generator = OpenAIGenerator(f"http://127.0.0.1:{free_port()}/v1", model="ragd-llm", timeout_s=2.0)
        try:
            assert await generator.ready() == {"server": False}
            with pytest.raises(DependencyError):
                await generator.complete(_messages(EN), GREEDY, EN)
            with pytest.raises(DependencyError):
                await _streamed(generator, EN, _messages(EN), GREEDY)
        finally:
            await generator.aclose()

    asyncio.run(run())
