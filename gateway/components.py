"""Builds the pieces the gateway composes: in process (embedded) or HTTP clients (distributed).

In-process pieces are imported only when chosen: the gateway's image carries no torch, so the
retriever and guardrails packages may be absent there.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from gateway.pipeline import AnswerCacheLike, ScopeFactory
from gateway.settings import GatewaySettings
from generator.abstention import Abstainer, abstainer_from
from generator.backends import Built, build_generator
from generator.packing import ContextPacker
from generator.settings import GeneratorSettings
from guardrails.policy import GatewaySide
from services.contracts import GenerationParams
from services.epochs import MemoryEpochStore, RedisEpochStore
from services.errors import DependencyError
from services.protocols import Corpus, EpochStore, Generator, Guard, Retriever

__all__ = ["Components", "build_components", "cache_scope_factory"]

_log = logging.getLogger("ragd.gateway")


@dataclass(frozen=True)
class GuardKnobs:
    """What the guardrail policy says about the gateway's side of the rails."""

    on_block_error: bool = False
    input_fail_open: bool = False
    output_fail_open: bool = False
    window_chars: int = 64


def guard_knobs(policy: GatewaySide | None, settings: GatewaySettings) -> GuardKnobs:
    """The policy's knobs (None: the guardrails service was not reached: the defaults), gateway settings first."""
    side = policy or GatewaySide(version="unknown")

    def pick(override: Any, default: Any) -> Any:
        return default if override is None else override

    return GuardKnobs(
        on_block_error=side.on_block == "error",
        input_fail_open=pick(settings.guard_input_fail_open, side.service_fail_open.input),
        output_fail_open=pick(settings.guard_output_fail_open, side.service_fail_open.output),
        window_chars=pick(settings.stream_holdback_chars, side.streaming.window_chars),
    )


@dataclass
class Components:
    retriever: Retriever
    corpus: Corpus
    generator: Generator
    guard: Guard
    epochs: EpochStore
    cache: AnswerCacheLike | None = None
    scope_factory: ScopeFactory | None = None
    redis: Redis | None = None
    knobs: GuardKnobs = GuardKnobs()
    abstainer: Abstainer | None = None
    packer: ContextPacker | None = None
    checks: dict[str, Callable[[], Awaitable[dict[str, bool]]]] = field(default_factory=dict)

    async def ready(self) -> dict[str, bool]:
        """Each checked piece: ready when all its checks hold (a check that raises counts as not ready)."""
        results: dict[str, bool] = {}
        for name, check in self.checks.items():
            try:
                results[name] = all((await check()).values())
            except Exception:
                results[name] = False
        return results


async def _retriever(settings: GatewaySettings, epochs: EpochStore, stack: AsyncExitStack) -> Any:
    if settings.retriever_url:
        client_mod = importlib.import_module("retriever.client")
        client = client_mod.HttpRetriever(settings.retriever_url, timeout_s=settings.dependency_timeout_s)
        stack.push_async_callback(client.aclose)
        return client
    service = importlib.import_module("retriever.service")
    # in process, the retriever keeps its files under the gateway's data dir (both read RAGD_DATA_DIR; a
    # gateway built with another data dir in code takes its retriever along)
    retriever_settings = importlib.import_module("retriever.settings").RetrieverSettings(data_dir=settings.data_dir)
    local = service.LocalRetriever(retriever_settings, epochs)
    await local.warm_up()
    stack.push_async_callback(local.aclose)
    return local


async def _guard(settings: GatewaySettings, stack: AsyncExitStack) -> Any:
    if settings.guardrails_url:
        client = importlib.import_module("guardrails.client").HttpGuard(
            settings.guardrails_url, timeout_s=settings.dependency_timeout_s)
        stack.push_async_callback(client.aclose)
        try:
            await client.warm_up()
        except DependencyError:
            _log.warning("guardrails service unreachable at start; its policy loads on first contact")
        return client
    engine = importlib.import_module("guardrails.engine")
    guard_settings = importlib.import_module("guardrails.settings").GuardrailsSettings()
    local = engine.LocalGuard.from_settings(guard_settings)
    await local.warm_up()
    stack.push_async_callback(local.aclose)
    return local


async def _generator(settings: GatewaySettings, stack: AsyncExitStack) -> Built:
    return await build_generator(GeneratorSettings(), url=settings.generator_url, model=settings.generator_model,
                                 stack=stack)


async def _cache(settings: GatewaySettings, redis_url: str | None, stack: AsyncExitStack) -> tuple[Any, Any]:
    try:
        cache_mod = importlib.import_module("cache")
    except ImportError:
        return None, None
    cache_settings = importlib.import_module("cache.settings").CacheSettings()
    if not cache_settings.enabled:
        return None, None
    answer_cache = cache_mod.AnswerCache.create(cache_settings, redis_url=redis_url)
    stack.push_async_callback(answer_cache.close)
    await answer_cache.warm_up()
    return answer_cache, cache_scope_factory(cache_mod.CacheScope)


def cache_scope_factory(scope_class: Any) -> ScopeFactory:
    """Cache scopes for the pipeline. A follow-up's conversation digest joins the policy part of the
    scope: the partition then holds only entries of the same conversation prefix. A metadata filter's
    digest is its own part of the scope, so filtered and unfiltered answers never share a partition."""

    def make(*, tenant: str, collection: str, epoch: str, policy_version: str, model: str,
             params: GenerationParams, context: str, filter: str = "") -> Any:
        policy = f"{policy_version}|conversation:{context}" if context else policy_version
        return scope_class(tenant=tenant, collection=collection, epoch=epoch, policy_version=policy,
                           model=model, params=params, filter=filter)

    return make


@asynccontextmanager
async def build_components(settings: GatewaySettings) -> AsyncIterator[Components]:
    async with AsyncExitStack() as stack:
        redis: Redis | None = None
        epochs: EpochStore
        if settings.redis_url:
            redis = Redis.from_url(settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
            stack.push_async_callback(redis.aclose)
            epochs = RedisEpochStore(redis)
        else:
            epochs = MemoryEpochStore()
        built = await _generator(settings, stack)
        retriever = await _retriever(settings, epochs, stack)
        guard = await _guard(settings, stack)
        cache, scope_factory = await _cache(settings, settings.redis_url, stack)
        components = Components(retriever=retriever, corpus=retriever, generator=built.generator, guard=guard,
                                epochs=epochs, cache=cache, scope_factory=scope_factory, redis=redis,
                                knobs=guard_knobs(guard.gateway_policy, settings),
                                abstainer=abstainer_from(GeneratorSettings()), packer=built.packer)
        # the gateway's own readiness holds the pieces it runs in process; pieces behind HTTP are its
        # dependencies (gateway.dependencies), so their outage never takes the gateway out of rotation
        in_process = (("retriever", retriever, settings.retriever_url), ("guardrails", guard, settings.guardrails_url))
        components.checks.update({name: piece.ready for name, piece, url in in_process if not url})
        yield components
