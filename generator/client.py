"""The generator client: any OpenAI-compatible chat server (vLLM in production, llama.cpp on CPU)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from services import telemetry
from services.contracts import AnswerContext, ChatMessage, Completion, Delta, GenerationParams, Usage
from services.errors import (
    DependencyError,
    DependencyTimeoutError,
    DependencyUnavailableError,
    InvalidRequestError,
    RagdError,
)
from services.httpclient import READY_TIMEOUT_S

__all__ = ["Decoding", "OpenAIGenerator", "without_invalid_bytes"]

REPLACEMENT = "\ufffd"


def without_invalid_bytes(text: str) -> str:
    """The model's text without U+FFFD. A byte-level model can sample a byte sequence that is not UTF-8
    (the first bytes of a Hangul syllable, then a token that does not complete it); llama.cpp and vLLM
    hold back a character split across tokens until it is complete, but encode such invalid bytes as
    U+FFFD in their JSON. The bytes carry no character, so the answer drops them rather than show one."""
    return text.replace(REPLACEMENT, "") if REPLACEMENT in text else text


@dataclass(frozen=True)
class Decoding:
    """Server-side decoding defaults sent with every request (on top of the client's parameters)."""

    stop: tuple[str, ...] = ()
    frequency_penalty: float = 0.0
    extra_body: Mapping[str, Any] = field(default_factory=dict)


def _mapped(exc: openai.OpenAIError) -> RagdError:
    if isinstance(exc, openai.APITimeoutError):
        return DependencyTimeoutError("The generator timed out.", dependency="generator")
    if isinstance(exc, openai.APIConnectionError):
        return DependencyUnavailableError("The generator is unavailable.", dependency="generator")
    if isinstance(exc, openai.APIStatusError) and exc.status_code == 400:
        return InvalidRequestError("The generator refused the request (prompt too long?).", code="generator_rejected")
    if isinstance(exc, openai.APIStatusError) and exc.status_code == 503:
        return DependencyUnavailableError("The generator is overloaded.", dependency="generator")
    return DependencyError("The generator failed.", dependency="generator")


class OpenAIGenerator:
    """Implements services.protocols.Generator over the official ``openai`` client; the model reads the
    prompt (``messages``), so ``context`` is not used."""

    def __init__(self, base_url: str, *, model: str, api_key: str = "none", timeout_s: float = 120.0,
                 decoding: Decoding | None = None) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.decoding = decoding or Decoding()
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)

    async def aclose(self) -> None:
        await self._client.close()

    async def ready(self) -> dict[str, bool]:
        """``server``: the server answers its model list (vLLM and llama.cpp serve ``GET /models``)."""
        try:
            await self._client.with_options(timeout=READY_TIMEOUT_S).models.list()
        except openai.OpenAIError:
            return {"server": False}
        return {"server": True}

    def _kwargs(self, messages: Sequence[ChatMessage], params: GenerationParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        stop = list(dict.fromkeys([*params.stop, *self.decoding.stop]))
        if stop:
            kwargs["stop"] = stop
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if self.decoding.frequency_penalty:
            kwargs["frequency_penalty"] = self.decoding.frequency_penalty
        if self.decoding.extra_body:
            kwargs["extra_body"] = dict(self.decoding.extra_body)
        return kwargs

    async def _create(self, **kwargs: Any) -> Any:
        """One request; a connection that failed before any response (a kept-alive connection the server
        closed between requests) is tried once more on a new one. Timeouts and answers are not retried."""
        try:
            return await self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise
        except openai.APIConnectionError:
            return await self._client.chat.completions.create(**kwargs)

    async def complete(self, messages: Sequence[ChatMessage], params: GenerationParams,
                       context: AnswerContext | None = None) -> Completion:
        start = time.perf_counter()
        try:
            response = await self._create(**self._kwargs(messages, params))
        except openai.OpenAIError as exc:
            raise _mapped(exc) from exc
        choice = response.choices[0]
        usage = Usage(prompt_tokens=response.usage.prompt_tokens if response.usage else 0,
                      completion_tokens=response.usage.completion_tokens if response.usage else 0)
        _record(usage, time.perf_counter() - start)
        return Completion(text=without_invalid_bytes(choice.message.content or ""),
                          finish_reason=choice.finish_reason or "stop", usage=usage)

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams,
                     context: AnswerContext | None = None) -> AsyncIterator[Delta]:
        start = time.perf_counter()
        try:
            stream = await self._create(**self._kwargs(messages, params), stream=True,
                                        stream_options={"include_usage": True})
        except openai.OpenAIError as exc:
            raise _mapped(exc) from exc
        finish: str | None = None
        usage = Usage()
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = Usage(prompt_tokens=chunk.usage.prompt_tokens,
                                  completion_tokens=chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    if choice.finish_reason:
                        finish = choice.finish_reason
                    text = without_invalid_bytes(choice.delta.content or "")
                    if text:
                        yield Delta(text=text)
        except openai.OpenAIError as exc:
            raise _mapped(exc) from exc
        finally:
            await stream.close()  # a client that went away cancels the generation upstream
        _record(usage, time.perf_counter() - start)
        yield Delta(finish_reason=finish or "stop", usage=usage)


def _record(usage: Usage, seconds: float) -> None:
    telemetry.TOKENS.labels("prompt").inc(usage.prompt_tokens)
    telemetry.TOKENS.labels("completion").inc(usage.completion_tokens)
    if usage.completion_tokens and seconds > 0:
        telemetry.GENERATION_TOKENS_PER_SECOND.observe(usage.completion_tokens / seconds)
