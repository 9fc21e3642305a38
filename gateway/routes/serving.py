"""What the chat and the legacy completions routes share: prepare -> generate -> respond, as one JSON body
or an SSE stream, in either OpenAI wire format.

A non-streaming request whose client goes away cancels its generation (a streaming one already does:
its response stops being read). Answers carry their citations in the body, and also in response
headers for clients that keep headers but drop unknown body fields (LangChain's ``ChatOpenAI`` with
``include_response_headers=True``): ``x-ragd-citations`` when the answer is known as the headers go
out, ``x-ragd-sources`` (the numbered sources the answer cites from) when it is still to be generated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from gateway.deadline import Stopped, run_by_deadline, stream_by_deadline
from gateway.deps import ChatContext
from gateway.pipeline import Answer, ChatTurn, Pipeline, Prepared
from gateway.replies import answer_headers, json_answer, log_answer, with_references
from gateway.settings import GatewaySettings
from gateway.sse import WireFormat
from gateway.turns import MODEL_PREFIX, PLAIN_MODEL
from services import telemetry
from services.app import sse_error_event
from services.errors import CollectionNotFoundError, InvalidRequestError, NotFoundError

__all__ = ["respond"]

_log = logging.getLogger("ragd.chat")
CLIENT_CLOSED = 499  # nginx's "client closed request": the status logged for an abandoned answer
T = TypeVar("T")


async def _prepare(pipeline: Pipeline, turn: ChatTurn) -> Prepared:
    try:
        return await run_by_deadline(pipeline.prepare(turn))
    except NotFoundError as exc:  # a ragd model id (or ragd.collection) naming a collection that is not there
        if exc.code != CollectionNotFoundError.default_code:
            raise
        from_model = turn.model == f"{MODEL_PREFIX}:{turn.collection}"
        raise CollectionNotFoundError(turn.collection, param="model" if from_model else "ragd.collection") from exc


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """``work``'s result by the request's deadline (:func:`gateway.deadline.run_by_deadline`); cancels
    it and raises :class:`ClientGone` when the client goes away first."""
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        return await run_by_deadline(work, also=watcher)
    except Stopped:
        raise ClientGone() from None
    finally:
        watcher.cancel()


async def _answer(pipeline: Pipeline, prepared: Prepared) -> Answer:
    return await pipeline.answer(prepared)


async def respond(turn: ChatTurn, request: Request, context: ChatContext, *, stream: bool, include_usage: bool,
                  wire: WireFormat, style: str = "fields") -> Response:
    """Prepare and answer ``turn``, as one body or a stream in ``wire``'s format."""
    principal, pipeline, settings = context.principal, context.pipeline, context.settings
    if not turn.retrieval and not pipeline.has_model:
        raise InvalidRequestError(
            f"'{PLAIN_MODEL}' writes without retrieval and needs a language model; this server has none and "
            f"answers by extraction from its documents (it serves '{PLAIN_MODEL}' for a frontend's tasks only). "
            f"Use '{MODEL_PREFIX}', or configure a model (RAGD_GATEWAY_GENERATOR_URL, or "
            "RAGD_GENERATOR_BACKEND=llm for the local llama.cpp model).", param="model", code="model_not_supported")
    prepared = await _prepare(pipeline, turn)
    if stream:
        on_done = partial(request.app.state.limiter.spend_tokens, principal)
        return StreamingResponse(_sse(pipeline, prepared, wire, turn.model, include_usage, settings, on_done, style),
                                 media_type="text/event-stream",
                                 headers={**answer_headers(prepared), "cache-control": "no-cache"})
    try:
        answer = await unless_disconnected(request, _answer(pipeline, prepared))
    except ClientGone:
        ctx = telemetry.current()
        if ctx is not None:
            ctx.fields["cancelled"] = "client_disconnected"
        return Response(status_code=CLIENT_CLOSED)
    finally:
        _release(prepared)
    spend = partial(request.app.state.limiter.spend_tokens, principal)
    return await json_answer(prepared, answer, model=turn.model, wire=wire, style=style, settings=settings,
                             spend=spend)


def _release(prepared: Prepared) -> None:
    if prepared.ticket is not None:
        prepared.ticket.release(completed=False)  # a no-op after the pipeline released it


async def _sse(pipeline: Pipeline, prepared: Prepared, wire: WireFormat, model: str, include_usage: bool,
               settings: GatewaySettings, on_done: Callable[[int], Awaitable[None]],
               style: str = "fields") -> AsyncIterator[bytes]:
    writer = wire.writer(model)
    pieces = 0
    try:
        start = writer.start()
        if start:
            yield start
        answer: Answer | None = None
        try:  # retrieval and guard checks are done; generation, output rails and hold-back run to the deadline
            async for item in stream_by_deadline(pipeline.stream(prepared)):
                if isinstance(item, Answer):
                    answer = item
                elif item.text:
                    pieces += 1
                    yield writer.content(item.text)
        except Exception as exc:  # after the first byte an error is an SSE event, then [DONE]
            _log.warning("stream failed", exc_info=exc)
            yield sse_error_event(exc)
            return
    finally:
        _release(prepared)
    assert answer is not None, "stream() ends in an Answer"
    log_answer(answer, prepared, settings, pieces=pieces)
    await on_done(answer.usage.total_tokens)
    references = with_references("", answer.citations, style)
    if references:
        yield writer.content(references)
    for event in writer.sources(answer.citations):
        yield event
    yield writer.finish(answer.finish_reason, answer.citations)
    if include_usage:
        yield writer.usage(answer.usage)
    yield writer.done()
