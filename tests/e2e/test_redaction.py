"""Input PII is redacted before retrieval and generation: the real pipeline (real guardrails, real
retriever, the real llama.cpp generator) with a recorder wrapped around the generator client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from gateway.pipeline import ChatTurn, Pipeline
from generator.client import OpenAIGenerator
from generator.llamacpp import LlamaCppServer
from generator.settings import GeneratorSettings
from guardrails.engine import LocalGuard
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
)
from services.epochs import MemoryEpochStore

pytestmark = pytest.mark.e2e


class RecordingGenerator:
    """Delegates to the real generator and keeps every prompt it was sent."""

    def __init__(self, inner: OpenAIGenerator) -> None:
        self.inner = inner
        self.prompts: list[str] = []

    async def complete(self, messages: Sequence[ChatMessage], params: GenerationParams,
                       context: AnswerContext | None = None) -> Completion:
        self.prompts.append("\n".join(m.content for m in messages))
        return await self.inner.complete(messages, params, context)

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams,
                     context: AnswerContext | None = None) -> AsyncIterator[Delta]:
        self.prompts.append("\n".join(m.content for m in messages))
        async for delta in self.inner.stream(messages, params, context):
            yield delta


def test_generator_and_retriever_never_see_input_pii(tmp_path: Path) -> None:
    email, rrn, card = "kim.minji@example.co.kr", "900101-1234568", "4111 1111 1111 1111"

    async def run() -> list[str]:
        server = LlamaCppServer(GeneratorSettings())
        server.start()
        epochs = MemoryEpochStore()
        retriever = LocalRetriever(RetrieverSettings(data_dir=tmp_path), epochs)
        guard = LocalGuard.from_settings(GuardrailsSettings())
        generator = RecordingGenerator(OpenAIGenerator(server.base_url, model="ragd-llm"))
        try:
            await retriever.warm_up()
            await guard.warm_up()
            await retriever.create_collection("t", "c", CollectionConfig())
            await retriever.add_documents("t", "c", [DocumentIn(id="refunds", title="Refunds",
                                                                text="Refunds are paid within 14 days.")])
            pipeline = Pipeline(retriever=retriever, generator=generator, guard=guard, epochs=epochs)
            question = f"My email is {email}, my RRN is {rrn} and my card is {card}. When are refunds paid?"
            prepared = await pipeline.prepare(ChatTurn(tenant="t", collection="c", model="ragd", question=question,
                                                       params=GenerationParams(max_tokens=8)))
            assert email not in prepared.standalone and rrn not in prepared.standalone
            answer = await pipeline.answer(prepared)
            assert email not in answer.content
            # PII in an earlier user turn of a conversation is redacted too (rewrite and answer prompts)
            history = (ChatMessage(role="user", content=f"I am {email}, card {card}. How are refunds paid?"),
                       ChatMessage(role="assistant", content="Within 14 days [1]."))
            follow_up = await pipeline.prepare(ChatTurn(tenant="t", collection="c", model="ragd",
                                                        question="and how long does it take?", history=history,
                                                        params=GenerationParams(max_tokens=8)))
            await pipeline.answer(follow_up)
            return generator.prompts
        finally:
            await retriever.aclose()
            await guard.aclose()
            await generator.inner.aclose()
            server.stop()

    prompts = asyncio.run(run())
    assert len(prompts) >= 3, "answer, rewrite and follow-up answer"
    assert "When are refunds paid?" in prompts[0]
    assert any("How are refunds paid?" in prompt for prompt in prompts[1:])  # the earlier turn, redacted
    for prompt in prompts:
        assert email not in prompt and rrn not in prompt and card not in prompt
