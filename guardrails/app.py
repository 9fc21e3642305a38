"""The guardrails service: ``POST /v1/guardrails/check`` and ``GET /v1/guardrails/policy``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from guardrails.engine import LocalGuard
from guardrails.settings import GuardrailsSettings
from services.app import install_common
from services.contracts import CONTRACT_VERSION, GuardCheckRequest, GuardDecision
from services.errors import InvalidRequestError

__all__ = ["POLICY_VERSION_HEADER", "create_app"]

POLICY_VERSION_HEADER = "x-ragd-policy-version"


def create_app(settings: GuardrailsSettings | None = None, *, guard: LocalGuard | None = None) -> FastAPI:
    """Build the service. The guard (policy, classifier, topic embedder) loads in the lifespan."""
    settings = settings or GuardrailsSettings()
    local = guard or LocalGuard.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await local.warm_up()
        try:
            yield
        finally:
            await local.aclose()

    app = FastAPI(title="ragd guardrails", version=CONTRACT_VERSION, lifespan=lifespan)

    install_common(app, service="guardrails", settings=settings, ready_check=local.ready)

    @app.middleware("http")
    async def policy_header(request: Request, call_next: Any) -> Any:
        contract = request.headers.get("x-ragd-contract")
        if contract is not None and contract.split(".")[0] != CONTRACT_VERSION.split(".")[0]:
            return JSONResponse(InvalidRequestError(f"Contract version {contract} is not supported.",
                                                    code="contract_mismatch").body(), status_code=400)
        response = await call_next(request)
        response.headers[POLICY_VERSION_HEADER] = local.policy_version
        return response

    @app.post("/v1/guardrails/check", response_model=GuardDecision)
    async def check(body: GuardCheckRequest) -> GuardDecision:
        return await local.check(body)

    @app.get("/v1/guardrails/policy")
    async def policy() -> dict[str, Any]:
        return local.gateway_policy.model_dump()

    return app
