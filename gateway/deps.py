"""FastAPI dependencies: the caller's principal and the composed pipeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.auth import KeyRing, Principal
from gateway.components import Components
from gateway.pipeline import Pipeline
from gateway.settings import GatewaySettings
from services import telemetry
from services.telemetry import stage

__all__ = ["ComponentsDep", "LimitedPrincipalDep", "PipelineDep", "PrincipalDep", "SettingsDep"]


def _authenticate(request: Request) -> Principal:
    keys: KeyRing = request.app.state.keys
    with stage("auth"):
        principal = keys.authenticate(request.headers.get("authorization"))
    ctx = telemetry.current()
    if ctx is not None:
        ctx.tenant = principal.tenant
        ctx.fields["key_id"] = principal.key_id
    return principal


# The dependencies are async on purpose: FastAPI runs plain-def ones in its thread pool, a hop per request.
async def _principal(request: Request) -> Principal:
    return _authenticate(request)


async def _limited_principal(request: Request) -> Principal:
    principal = _authenticate(request)
    await request.app.state.limiter.admit(principal)
    return principal


async def _components(request: Request) -> Components:
    components: Components = request.app.state.components
    return components


async def _pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


async def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


PrincipalDep = Annotated[Principal, Depends(_principal)]
LimitedPrincipalDep = Annotated[Principal, Depends(_limited_principal)]
"""A principal whose request was counted against its key's rate limits (429 when over)."""
ComponentsDep = Annotated[Components, Depends(_components)]
PipelineDep = Annotated[Pipeline, Depends(_pipeline)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
