"""Admission control and body-size limits as pure-ASGI middleware (streaming-safe)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.errors import PayloadTooLargeError, RateLimitError
from services.telemetry import RATE_LIMITED

__all__ = ["AdmissionMiddleware", "BodyLimitMiddleware"]


async def _send_error(send: Send, status: int, body: dict[str, object], headers: dict[str, str]) -> None:
    raw = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


async def _send_too_large(send: Send, limit: int) -> None:
    too_large = PayloadTooLargeError(f"Request body is larger than {limit} bytes.")
    await _send_error(send, too_large.status, too_large.body(), {})


class AdmissionMiddleware:
    """Above ``max_in_flight`` concurrent API requests, answer a fast 429 instead of queueing."""

    def __init__(self, app: ASGIApp, *, max_in_flight: int, prefix: str = "/v1/") -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.prefix = prefix
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            RATE_LIMITED.labels("admission").inc()
            exc = RateLimitError("The server is at capacity; retry shortly.", code="server_overloaded")
            await _send_error(send, exc.status, exc.body(), {"retry-after": "1"})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413, by Content-Length up front or while reading."""

    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        multipart, length = False, b""
        for key, value in scope.get("headers", ()):  # ASGI header names are lower-case
            if key == b"content-type":
                multipart = value.startswith(b"multipart/")
            elif key == b"content-length":
                length = value
        limit = self.max_upload_bytes if multipart else self.max_json_bytes
        if length.isdigit() and int(length) > limit:
            await _send_too_large(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_too_large(send, limit)


class _TooLarge(Exception):
    pass
