"""App-factory helpers every ragd service uses: error mapping, health, readiness, metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from services import telemetry
from services.errors import RagdError, error_body
from services.middleware import RequestContextMiddleware
from services.settings import ServiceSettings

__all__ = ["DependencyCheck", "OpsAccess", "ReadyCheck", "error_response", "install_common", "sse_error_event"]

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]
# each dependency's report: {"state": "up" | "down" | "unknown" | "unused", ...}
DependencyCheck = Callable[[], Awaitable[dict[str, dict[str, Any]]]]
# whether a request may read /metrics and the dependency view
OpsAccess = Callable[[Request], bool]
_log = logging.getLogger("ragd.errors")

_STATUS_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
    413: "invalid_request_error", 415: "invalid_request_error", 422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_response(exc: RagdError) -> JSONResponse:
    """The one place a RagdError becomes an HTTP response."""
    ctx = telemetry.current()
    if ctx is not None:
        ctx.fields["error_type"] = type(exc).__name__
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def sse_error_event(exc: BaseException) -> bytes:
    """An error after the first streamed byte: an SSE event in the OpenAI error shape, then [DONE]."""
    body = exc.body() if isinstance(exc, RagdError) else _internal_error_body()
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\ndata: [DONE]\n\n".encode()


def _internal_error_body() -> dict[str, Any]:
    ctx = telemetry.current()
    rid = ctx.request_id if ctx else "unknown"
    return error_body(f"Internal server error (request id {rid}).", "server_error", code="internal_error")


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "Invalid request.", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    param = ".".join(loc) or None
    msg = str(first.get("msg", "invalid value"))
    if first.get("type") == "json_invalid":
        return "We could not parse the JSON body of your request.", None
    where = f" at '{param}'" if param else ""
    return f"Invalid request{where}: {msg}.", param


def install_common(
    app: FastAPI,
    *,
    service: str,
    settings: ServiceSettings,
    ready_check: ReadyCheck | None = None,
    dependencies: DependencyCheck | None = None,
    ops_access: OpsAccess | None = None,
) -> None:
    """Middleware, error handlers and the /health, /ready, /metrics routes of every service.

    ``/health``: the process answers (liveness). ``/ready``: ``ready_check`` holds (readiness; the
    service's own state only). ``/ready?deep=1``: also ``dependencies``, 503 when one is down or unknown.
    ``ops_access`` (default: every request) decides who may read ``/metrics`` and the deep view; others
    get a 404, as for a route that does not exist."""
    telemetry.configure_logging(settings.log_level)
    app.add_middleware(RequestContextMiddleware, service=service, default_timeout_s=settings.request_timeout_s)

    @app.exception_handler(RagdError)
    async def _ragd_error(_: Request, exc: RagdError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return JSONResponse(error_body(message, "invalid_request_error", param=param, code="invalid_value"),
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _STATUS_TYPES.get(exc.status_code, "server_error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        return JSONResponse(error_body(message, type_, code=None), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unknown_error(_: Request, exc: Exception) -> JSONResponse:
        _log.error("unhandled error", exc_info=exc)
        return JSONResponse(_internal_error_body(), status_code=500)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service}

    def allowed(request: Request) -> None:
        if ops_access is not None and not ops_access(request):
            raise StarletteHTTPException(404, "Not Found")

    @app.get("/ready", include_in_schema=False)
    async def ready(request: Request, deep: bool = False) -> JSONResponse:
        checks = await ready_check() if ready_check else {}
        ok = all(checks.values())
        body: dict[str, Any] = {"ready": ok, "service": service, "checks": checks}
        if deep:
            allowed(request)
            deps = await dependencies() if dependencies else {}
            body["dependencies"] = deps
            body["ready"] = ok = ok and all(d.get("state") in ("up", "unused") for d in deps.values())
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        allowed(request)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
