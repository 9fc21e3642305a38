"""Generator backends by name (``RAGD_GENERATOR_BACKEND``): what writes the answer.

- ``llm``: an OpenAI-compatible chat model: vLLM (or any server) at ``RAGD_GENERATOR_URL``, else a local
  llama.cpp server started here with the packaged GGUF.
- ``extractive``: the sources' best sentences, cited (:mod:`generator.extractive`); no model, no server.
- ``by-language``: per question language, one of the two (``RAGD_GENERATOR_LANGUAGE_BACKENDS``); follow-up
  rewrites go to the model.
- ``auto`` (the default): ``llm`` when a generator URL is set (a vLLM deployment), else ``extractive``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from generator.client import Decoding, OpenAIGenerator
from generator.extractive import ExtractiveGenerator
from generator.llamacpp import LlamaCppServer
from generator.packing import ContextPacker, ServerTokenizer
from generator.settings import GeneratorSettings
from services.contracts import AnswerContext, ChatMessage, Completion, Delta, GenerationParams
from services.protocols import Generator

__all__ = ["BACKENDS", "Built", "ByLanguageGenerator", "build_generator"]

_log = logging.getLogger("ragd.generator")



@dataclass(frozen=True)
class Built:
    """A backend, and the packer that fits prompts into its model's window (None: no model, no window)."""

    generator: Generator
    packer: ContextPacker | None = None


Builder = Callable[[GeneratorSettings, str | None, str, AsyncExitStack], Awaitable[Built]]


async def _llm(settings: GeneratorSettings, url: str | None, model: str, stack: AsyncExitStack) -> Built:
    url = url or settings.url
    window = settings.context_window
    if url is None:
        window = window or settings.n_ctx // settings.n_parallel
        server = LlamaCppServer(settings)
        await asyncio.to_thread(server.start)
        stack.callback(server.stop)
        supervisor = asyncio.create_task(server.supervise(settings.supervise_interval_s))
        stack.callback(supervisor.cancel)
        url = server.base_url
        _log.info("local llama.cpp generator started", extra={"ragd": {"url": url}})
    decoding = Decoding(stop=tuple(settings.stop_sequences), frequency_penalty=settings.frequency_penalty,
                        extra_body=dict(settings.extra_body))
    generator = OpenAIGenerator(url, model=model, api_key=settings.api_key, timeout_s=settings.timeout_s,
                                decoding=decoding)
    stack.push_async_callback(generator.aclose)
    tokenizer = ServerTokenizer(url, model=model)
    stack.push_async_callback(tokenizer.aclose)
    return Built(generator, ContextPacker(tokenizer, window=window))


async def _extractive(settings: GeneratorSettings, url: str | None, model: str, stack: AsyncExitStack) -> Built:
    return Built(ExtractiveGenerator())


class ByLanguageGenerator:
    """Routes each answer by its question's language; calls without context (rewrites) go to ``default``."""

    def __init__(self, routes: Mapping[str, Generator], default: Generator) -> None:
        self.routes = dict(routes)
        self.default = default

    def _for(self, context: AnswerContext | None) -> Generator:
        return self.default if context is None else self.routes.get(context.language, self.default)

    async def ready(self) -> dict[str, bool]:
        """Every route's checks, named ``<language>.<check>`` (``default.<check>`` for the default)."""
        pieces = [("default", self.default), *sorted(self.routes.items())]
        results = await asyncio.gather(*(generator.ready() for _, generator in pieces))
        return {f"{name}.{check}": ok for (name, _), checks in zip(pieces, results, strict=True)
                for check, ok in checks.items()}

    async def complete(self, messages: Sequence[ChatMessage], params: GenerationParams,
                       context: AnswerContext | None = None) -> Completion:
        return await self._for(context).complete(messages, params, context)

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams,
                     context: AnswerContext | None = None) -> AsyncIterator[Delta]:
        async for delta in self._for(context).stream(messages, params, context):
            yield delta


async def _by_language(settings: GeneratorSettings, url: str | None, model: str, stack: AsyncExitStack) -> Built:
    built: dict[str, Built] = {}
    for name in sorted(set(settings.language_backends.values()) | {"llm"}):
        built[name] = await BACKENDS[name](settings, url, model, stack)
    routes = {language: built[name].generator for language, name in settings.language_backends.items()}
    return Built(ByLanguageGenerator(routes, built["llm"].generator), built["llm"].packer)


BACKENDS: dict[str, Builder] = {"llm": _llm, "extractive": _extractive, "by-language": _by_language}


async def build_generator(settings: GeneratorSettings, *, url: str | None, model: str,
                          stack: AsyncExitStack) -> Built:
    """The configured backend; servers it starts and clients it opens are closed by ``stack``."""
    name = settings.backend
    if name == "auto":
        name = "llm" if (url or settings.url) else "extractive"
    return await BACKENDS[name](settings, url, model, stack)
