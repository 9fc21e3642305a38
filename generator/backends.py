"""Generator backends by name (``RAGD_GENERATOR_BACKEND``): what writes the answer.

- ``llm``: an OpenAI-compatible chat model: vLLM (or any server) at ``RAGD_GENERATOR_URL``, else a local
  llama.cpp server started here with the packaged GGUF.
- ``extractive``: the sources' best sentences, cited (:mod:`generator.extractive`); no model, no server.
- ``by-language``: per question language, one of the two (``RAGD_GENERATOR_LANGUAGE_BACKENDS``); follow-up
  rewrites go to the model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack

from generator.client import OpenAIGenerator
from generator.extractive import ExtractiveGenerator
from generator.llamacpp import LlamaCppServer
from generator.settings import GeneratorSettings
from services.contracts import AnswerContext, ChatMessage, Completion, Delta, GenerationParams
from services.protocols import Generator

__all__ = ["BACKENDS", "ByLanguageGenerator", "build_generator"]

_log = logging.getLogger("ragd.generator")

Builder = Callable[[GeneratorSettings, str | None, str, AsyncExitStack], Awaitable[Generator]]


async def _llm(settings: GeneratorSettings, url: str | None, model: str, stack: AsyncExitStack) -> Generator:
    url = url or settings.url
    if url is None:
        server = LlamaCppServer(settings)
        await asyncio.to_thread(server.start)
        stack.callback(server.stop)
        supervisor = asyncio.create_task(server.supervise(settings.supervise_interval_s))
        stack.callback(supervisor.cancel)
        url = server.base_url
        _log.info("local llama.cpp generator started", extra={"ragd": {"url": url}})
    generator = OpenAIGenerator(url, model=model, api_key=settings.api_key, timeout_s=settings.timeout_s)
    stack.push_async_callback(generator.aclose)
    return generator


async def _extractive(settings: GeneratorSettings, url: str | None, model: str, stack: AsyncExitStack) -> Generator:
    return ExtractiveGenerator()


class ByLanguageGenerator:
    """Routes each answer by its question's language; calls without context (rewrites) go to ``default``."""

    def __init__(self, routes: Mapping[str, Generator], default: Generator) -> None:
        self.routes = dict(routes)
        self.default = default

    def _for(self, context: AnswerContext | None) -> Generator:
        return self.default if context is None else self.routes.get(context.language, self.default)

    async def complete(self, messages: Sequence[ChatMessage], params: GenerationParams,
                       context: AnswerContext | None = None) -> Completion:
        return await self._for(context).complete(messages, params, context)

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams,
                     context: AnswerContext | None = None) -> AsyncIterator[Delta]:
        async for delta in self._for(context).stream(messages, params, context):
            yield delta


async def _by_language(settings: GeneratorSettings, url: str | None, model: str,
                       stack: AsyncExitStack) -> Generator:
    built: dict[str, Generator] = {}
    for name in sorted(set(settings.language_backends.values()) | {"llm"}):
        if name not in ("llm", "extractive"):
            raise ValueError(f"language_backends names {name!r}; only 'llm' and 'extractive' can be routed to")
        built[name] = await BACKENDS[name](settings, url, model, stack)
    routes = {language: built[name] for language, name in settings.language_backends.items()}
    return ByLanguageGenerator(routes, built["llm"])


BACKENDS: dict[str, Builder] = {"llm": _llm, "extractive": _extractive, "by-language": _by_language}


async def build_generator(settings: GeneratorSettings, *, url: str | None, model: str,
                          stack: AsyncExitStack) -> Generator:
    """The configured backend; servers it starts and clients it opens are closed by ``stack``."""
    return await BACKENDS[settings.backend](settings, url, model, stack)
