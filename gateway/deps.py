"""FastAPI dependencies: the caller's principal and the composed pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from gateway.auth import Authenticator, Principal
from gateway.components import Components
from gateway.pipeline import Pipeline
from gateway.settings import GatewaySettings
from services import telemetry
from services.telemetry import stage

__all__ = ["ChatContext", "ChatContextDep", "ComponentsDep", "LimitedPrincipalDep", "PrincipalDep", "SettingsDep",
           "bind_principal"]


def bind_principal(principal: Principal) -> None:
    """The request's log line names the caller's tenant and key id (never the key)."""
    ctx = telemetry.current()
    if ctx is not None:
        ctx.tenant = principal.tenant
        ctx.fields["key_id"] = principal.key_id


async def _authenticate(request: Request) -> Principal:
    keys: Authenticator = request.app.state.keys
    with stage("auth"):
        principal = await keys.authenticate(request.headers.get("authorization"))
    bind_principal(principal)
    return principal


# The dependencies are async on purpose: FastAPI runs plain-def ones in its thread pool, a hop per request.
async def _principal(request: Request) -> Principal:
    return await _authenticate(request)


async def _limited_principal(request: Request) -> Principal:
    principal = await _authenticate(request)
    await request.app.state.limiter.admit(principal)
    return principal


@dataclass(frozen=True, slots=True)
class ChatContext:
    """What the chat route needs, resolved as one dependency (each FastAPI dependency adds work to
    every request, an exact cache hit included)."""

    principal: Principal
    pipeline: Pipeline
    settings: GatewaySettings


async def _chat_context(request: Request) -> ChatContext:
    state = request.app.state
    return ChatContext(await _limited_principal(request), state.pipeline, state.settings)


async def _components(request: Request) -> Components:
    components: Components = request.app.state.components
    return components


async def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


ChatContextDep = Annotated[ChatContext, Depends(_chat_context)]
"""The rate-limited principal, the pipeline and the settings, for the chat route."""
PrincipalDep = Annotated[Principal, Depends(_principal)]
LimitedPrincipalDep = Annotated[Principal, Depends(_limited_principal)]
"""A principal whose request was counted against its key's rate limits (429 when over)."""
ComponentsDep = Annotated[Components, Depends(_components)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
