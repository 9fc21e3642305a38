"""The gateway's app factory: the public OpenAI-compatible API plus corpus REST."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from gateway.access import open_auth
from gateway.admission import AdmissionSettings, GeneratorAdmission
from gateway.auth import KeyRing
from gateway.components import Components, build_components
from gateway.dependencies import dependency_view
from gateway.fastpath import ExactHitFastPath
from gateway.limits import AdmissionMiddleware, BodyLimitMiddleware
from gateway.ops import OpsPortMiddleware, ops_access
from gateway.pipeline import Pipeline, PipelineOptions
from gateway.ratelimit import MemoryCounters, RateLimiter, RedisCounters
from gateway.routes import chat, completions, corpus, embeddings, keys
from gateway.settings import GatewaySettings
from services.app import install_common
from services.contracts import CollectionConfig
from services.errors import ConflictError

__all__ = ["create_app"]

_log = logging.getLogger("ragd.gateway")

ComponentsFactory = Callable[[GatewaySettings], AbstractAsyncContextManager[Components]]


async def _seed(components: Components, settings: GatewaySettings, tenant: str) -> None:
    """Create the default collection and ingest the demo corpus into it on first start."""
    with suppress(ConflictError):
        await components.corpus.create_collection(tenant, settings.default_collection, CollectionConfig())
    if settings.demo_corpus is None:
        return
    infos = {c.name: c for c in await components.corpus.list_collections(tenant)}
    info = infos.get(settings.default_collection)
    if info is not None and info.documents > 0:
        return
    from retriever.loaders import load_path

    documents = load_path(Path(settings.demo_corpus))
    report = await components.corpus.add_documents(tenant, settings.default_collection, documents)
    _log.info("demo corpus ingested", extra={"ragd": {"documents": len(report.added),
                                                       "chunks": report.chunks_added}})


def create_app(settings: GatewaySettings | None = None,
               components_factory: ComponentsFactory = build_components,
               admission: AdmissionSettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    admission = admission or AdmissionSettings()
    ring = KeyRing.load(file=settings.api_keys_file, inline=settings.api_keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)  # process-wide; see the setting
        async with open_auth(settings, ring) as (auth, key_store), components_factory(settings) as components:
            app.state.keys, app.state.key_store = auth, key_store
            if auth.is_open:
                await _seed(components, settings, settings.default_tenant)
            app.state.components = components
            counters = RedisCounters(components.redis) if components.redis is not None else MemoryCounters()
            app.state.limiter = RateLimiter(counters, rpm=settings.rate_limit_rpm, tpm=settings.rate_limit_tpm)
            options = PipelineOptions(
                system_prompt=settings.system_prompt, source_chars=settings.source_chars,
                rewrite_follow_ups=settings.rewrite_follow_ups, guard_input_fail_open=components.knobs.input_fail_open,
                guard_output_fail_open=components.knobs.output_fail_open,
                holdback_chars=components.knobs.window_chars, on_block_error=components.knobs.on_block_error)
            app.state.pipeline = Pipeline(
                retriever=components.retriever, generator=components.generator, guard=components.guard,
                epochs=components.epochs, cache=components.cache, scope_factory=components.scope_factory,
                options=options, abstainer=components.abstainer, packer=components.packer,
                admission=GeneratorAdmission(admission))
            yield

    # ragd's metrics are Prometheus (/metrics) and its traces the request id: FastAPI's built-in
    # OpenTelemetry stays off, so it does not look for providers on every request
    app = FastAPI(title="ragd", version="0.1.0", lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  description="ragd: retrieval-augmented answers over your documents, OpenAI-compatible.")
    app.state.settings = settings

    async def ready() -> dict[str, bool]:
        components: Components | None = getattr(app.state, "components", None)
        if components is None:
            return {"started": False}
        return {"started": True, **await components.ready()}

    async def dependencies() -> dict[str, dict[str, object]]:
        return await dependency_view(getattr(app.state, "components", None), settings)

    app.include_router(chat.router)
    app.include_router(completions.router)
    app.include_router(corpus.router)
    app.include_router(embeddings.router)
    app.include_router(keys.router)
    app.add_middleware(ExactHitFastPath, state=lambda: app.state)  # innermost: beneath every limit
    app.add_middleware(BodyLimitMiddleware, max_json_bytes=settings.max_body_bytes,
                       max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(AdmissionMiddleware, max_in_flight=settings.max_in_flight)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["authorization", "content-type", "x-request-id"])
    if settings.metrics_port is not None:
        app.add_middleware(OpsPortMiddleware, port=settings.metrics_port)
    install_common(app, service="gateway", settings=settings, ready_check=ready, dependencies=dependencies,
                   ops_access=ops_access(settings))
    return app
