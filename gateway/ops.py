"""The gateway's operator surface: where /metrics and the dependency view answer, and the listener they use.

The public port is what users reach, so it does not serve Prometheus' metrics or the dependency view: with
``metrics_port`` set they answer only on that second, internal port (which compose and Kubernetes never
publish), and that port answers nothing else. Without it, they answer on the main port only while the
gateway listens on loopback (``make run``, ``ragd up``, the tests), where only the machine itself can ask.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import uvicorn
from fastapi import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.settings import GatewaySettings
from services.errors import error_body

__all__ = ["OPS_PATHS", "OpsPortMiddleware", "is_loopback", "ops_access", "serve"]

OPS_PATHS = frozenset({"/metrics", "/health", "/ready"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_port(scope: Scope) -> int | None:
    server = scope.get("server")
    return int(server[1]) if server and server[1] is not None else None


def ops_access(settings: GatewaySettings) -> Callable[[Request], bool]:
    """Whether a request may read /metrics and the dependency view (see the module docstring)."""
    port = settings.metrics_port
    if port is not None:
        return lambda request: _local_port(request.scope) == port
    loopback = is_loopback(settings.host)
    return lambda _request: loopback


class OpsPortMiddleware:
    """On the internal metrics port, only /metrics, /health and /ready answer; anything else is a 404."""

    def __init__(self, app: ASGIApp, *, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _local_port(scope) == self.port and scope["path"] not in OPS_PATHS:
            body = error_body("Only /metrics, /health and /ready are served on this port.",
                              "invalid_request_error", code="not_found")
            await JSONResponse(body, status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    sock.set_inheritable(True)
    return sock


def serve(app: ASGIApp, settings: GatewaySettings) -> None:
    """Run the gateway: on its main port, and on ``metrics_port`` too when one is set (one server, two
    sockets: the app tells them apart by the local port of each connection)."""
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    if settings.metrics_port is None:
        server.run()
        return
    server.run(sockets=[_listen(settings.host, settings.port), _listen(settings.host, settings.metrics_port)])
