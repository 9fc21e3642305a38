"""Pure-ASGI middleware (streaming-safe): request id, timing, request metrics and the log line."""

from __future__ import annotations

import json
import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import telemetry
from services.errors import error_body
from services.telemetry import IN_FLIGHT, REQUEST_SECONDS, REQUESTS, RequestContext

__all__ = ["REQUEST_ID_HEADER", "RequestContextMiddleware"]

REQUEST_ID_HEADER = "x-request-id"
DEADLINE_HEADER = "x-ragd-deadline-ms"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.encode()
_DEADLINE_KEY = DEADLINE_HEADER.encode()
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_log = logging.getLogger("ragd.access")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContextMiddleware:
    """Accepts or makes ``x-request-id``, echoes it, binds a RequestContext, counts and logs the request.

    An internal caller's remaining deadline arrives in ``x-ragd-deadline-ms`` and bounds this request.
    """

    def __init__(self, app: ASGIApp, *, service: str, default_timeout_s: float) -> None:
        self.app = app
        self.service = service
        self.default_timeout_s = default_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = deadline_ms = ""
        for key, value in scope.get("headers", ()):  # ASGI header names are lower-case
            if key == _REQUEST_ID_KEY:
                incoming = value.decode("latin-1")
            elif key == _DEADLINE_KEY:
                deadline_ms = value.decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else telemetry.new_request_id()
        timeout_s = self.default_timeout_s
        if deadline_ms.isdigit():
            timeout_s = min(timeout_s, int(deadline_ms) / 1000)
        ctx = RequestContext(request_id=request_id, service=self.service,
                             deadline=time.monotonic() + timeout_s)
        token = telemetry.bind(ctx)
        status = 500
        start = time.perf_counter()
        in_flight = telemetry.child(IN_FLIGHT, self.service)
        in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = list(message.get("headers", []))
                raw.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": raw}
            await send(message)

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_wrapper(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            _log.error("unhandled error", exc_info=exc, extra={"ragd": {"request_id": request_id}})
            if started:
                raise
            body = json.dumps(error_body(f"Internal server error (request id {request_id}).", "server_error",
                                         code="internal_error")).encode()
            await send_wrapper({"type": "http.response.start", "status": 500,
                                "headers": [(b"content-type", b"application/json")]})
            await send_wrapper({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - start
            in_flight.dec()
            route = ctx.route or _route_template(scope)  # a handler beneath the router may name its route
            ctx.route = route
            telemetry.child(REQUESTS, self.service, route, scope.get("method", ""), str(status)).inc()
            telemetry.child(REQUEST_SECONDS, self.service, route).observe(elapsed)
            if route not in ("/metrics", "/health"):
                _log.info("request", extra={"ragd": {
                    "request_id": request_id, "service": self.service, "tenant": ctx.tenant,
                    "route": route, "method": scope.get("method", ""), "status": status,
                    "latency_ms": round(elapsed * 1000, 3), "stages_ms": ctx.stages_ms, **ctx.fields,
                }})
            telemetry.unbind(token)
