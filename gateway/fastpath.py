"""Exact cache hits answered beneath FastAPI's routing: the repeated question's fast path.

An exact hit is answered in well under a millisecond of work, and FastAPI's routing, dependency
injection and response machinery then cost more than the answer itself. :class:`ExactHitFastPath` sits
inside the request-context, admission and body-limit middleware, so a hit still gets its request id,
metrics, log line, in-flight bound and body limit. It answers ``POST /v1/chat/completions`` itself only
when the request is a non-streaming, single-turn exact hit whose input-rail decision is already known;
anything else (a miss, a stream, a follow-up, bad input, a wrong key) goes on to the normal route with
its body replayed, untouched.

A hit here goes through the same steps as through the route: the key is authenticated, the rate
limit admits the request (a 429 is answered here, as the route would), the remembered input-rail
decision is counted, the cache lookup is timed and counted, and the answer goes back through the
route's own :func:`gateway.replies.json_answer` (logged, tokens spent, the same body and headers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import Principal
from gateway.deps import bind_principal
from gateway.openai_schema import ChatCompletionRequest
from gateway.pipeline import Prepared
from gateway.replies import json_answer
from gateway.sse import CHAT
from gateway.turns import reference_style, to_turn
from services import telemetry
from services.app import error_response
from services.errors import RagdError

__all__ = ["CHAT_PATH", "ExactHitFastPath"]

CHAT_PATH = "/v1/chat/completions"


class ExactHitFastPath:
    """Pure-ASGI middleware; ``state`` returns the app's state (keys, settings, pipeline, limiter)."""

    def __init__(self, app: ASGIApp, *, state: Callable[[], Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != CHAT_PATH:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        more = True
        while more:
            message = await receive()
            messages.append(message)
            more = message["type"] == "http.request" and message.get("more_body", False)
        if messages[-1]["type"] == "http.request":
            body = b"".join(m.get("body", b"") for m in messages)
            if await self._answer(scope, body, send):
                return
        await self.app(scope, _replay(messages, receive), send)

    async def _answer(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Answer the request if it is an exact hit; False (having sent and counted nothing) otherwise."""
        state = self.state()
        pipeline = getattr(state, "pipeline", None)
        if pipeline is None:  # not started yet: the route answers (or says so)
            return False
        settings = state.settings
        authorization = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        started = time.perf_counter()
        try:
            principal: Principal = await state.keys.authenticate(authorization, audit=False)
        except RagdError:
            return False
        auth_s = time.perf_counter() - started
        try:
            request = ChatCompletionRequest.model_validate_json(body)
        except ValidationError:
            return False
        if request.stream:
            return False
        cache_control = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"cache-control"), "")
        try:
            turn = to_turn(request, tenant=principal.tenant, settings=settings, cache_control=cache_control)
        except RagdError:
            return False
        bind_principal(principal)  # the log line names the tenant even when the hit turns out absent
        prepared: Prepared | None = await pipeline.exact_hit(turn)
        if prepared is None or prepared.answer is None:
            return False
        telemetry.observe_stage("auth", auth_s)
        ctx = telemetry.current()
        if ctx is not None:
            ctx.route = CHAT_PATH
        try:
            await state.limiter.admit(principal)
        except RagdError as exc:
            await error_response(exc)(scope, _no_body, send)
            return True
        spend = partial(state.limiter.spend_tokens, principal)
        response = await json_answer(prepared, prepared.answer, model=request.model, wire=CHAT,
                                     style=reference_style(request, settings), settings=settings, spend=spend)
        await response(scope, _no_body, send)
        return True


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """The request's messages as they were read, then the connection's own (a disconnect)."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
