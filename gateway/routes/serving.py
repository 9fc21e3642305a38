"""What the chat and the legacy completions routes share: request fields to a :class:`ChatTurn`, then
prepare -> generate -> respond, as one JSON body or an SSE stream, in either OpenAI wire format.

A non-streaming request whose client goes away cancels its generation (a streaming one already does:
its response stops being read). Answers carry their citations in the body, and also in response
headers for clients that keep headers but drop unknown body fields (LangChain's ``ChatOpenAI`` with
``include_response_headers=True``): ``x-ragd-citations`` when the answer is known as the headers go
out, ``x-ragd-sources`` (the numbered sources the answer cites from) when it is still to be generated.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from cache.eligibility import cache_directives
from gateway.citation_forms import markdown_references
from gateway.deadline import Stopped, run_by_deadline, stream_by_deadline
from gateway.deps import ChatContext
from gateway.openai_schema import Citation, RagdOptions
from gateway.pipeline import Answer, ChatTurn, Pipeline, Prepared, citation_of
from gateway.routes.embeddings import EMBEDDING_MODEL
from gateway.settings import GatewaySettings
from gateway.sse import WireFormat
from services import telemetry
from services.app import sse_error_event
from services.contracts import ChatMessage, GenerationParams
from services.errors import CollectionNotFoundError, InvalidRequestError, NotFoundError

__all__ = ["MODEL_PREFIX", "PLAIN_MODEL", "answer_headers", "collection_of", "log_answer", "make_turn",
           "reference_style",
           "respond", "with_references"]

_log = logging.getLogger("ragd.chat")
MODEL_PREFIX = "ragd"
PLAIN_MODEL = "ragd-chat"  # plain generation: no retrieval, no citations, no cache (e.g. a frontend's task model)
CLIENT_CLOSED = 499  # nginx's "client closed request": the status logged for an abandoned answer
_HEADER_TITLE_CHARS = 100
T = TypeVar("T")


class Routed(Protocol):
    """The request fields every answering route has."""

    model: str
    ragd: RagdOptions | None
    collection: str | None
    temperature: float | None
    top_p: float | None
    stop: str | list[str] | None
    seed: int | None


def collection_of(model: str, request: Routed, settings: GatewaySettings) -> str:
    if model == EMBEDDING_MODEL or model.startswith(EMBEDDING_MODEL + ":"):
        raise InvalidRequestError(
            f"{EMBEDDING_MODEL} is an embeddings model; use 'ragd' (or 'ragd:<collection>', or '{PLAIN_MODEL}' "
            f"without retrieval) for chat, and {EMBEDDING_MODEL} with POST /v1/embeddings.",
            param="model", code="model_not_supported")
    explicit = (request.ragd.collection if request.ragd else None) or request.collection
    if explicit:
        return explicit
    if model in (MODEL_PREFIX, PLAIN_MODEL):
        return settings.default_collection
    if model.startswith(MODEL_PREFIX + ":") and len(model) > len(MODEL_PREFIX) + 1:
        return model[len(MODEL_PREFIX) + 1:]
    raise NotFoundError(f"The model '{model[:100]}' does not exist. Use 'ragd', 'ragd:<collection>' or "
                        f"'{PLAIN_MODEL}'.", param="model", code="model_not_found")


def reference_style(request: Routed, settings: GatewaySettings) -> str:
    """Where the answer carries its citations: the request's ``ragd.references``, else the server's."""
    return (request.ragd.references if request.ragd else None) or settings.references


def with_references(content: str, citations: list[Citation], style: str) -> str:
    """The answer text, with its numbered references appended when the style is ``markdown``."""
    return content + markdown_references(citations) if style == "markdown" else content


def make_turn(body: Routed, *, question: str, history: Sequence[ChatMessage], instructions: str | None,
              max_tokens: int | None, max_tokens_param: str, tenant: str, settings: GatewaySettings,
              cache_control: str) -> ChatTurn:
    """The one place request fields become a ChatTurn: generation defaults, limits, cache directives."""
    max_tokens = max_tokens or settings.default_max_tokens
    if max_tokens > settings.max_tokens_limit:
        raise InvalidRequestError(f"max_tokens must be at most {settings.max_tokens_limit}.", param=max_tokens_param)
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    if len(stop) > 4:
        raise InvalidRequestError("At most 4 stop sequences.", param="stop")
    params = GenerationParams(temperature=0.0 if body.temperature is None else body.temperature,
                              top_p=1.0 if body.top_p is None else body.top_p, max_tokens=max_tokens,
                              stop=stop, seed=body.seed)
    directives = cache_directives(cache_control)
    top_k = (body.ragd.top_k if body.ragd else None) or settings.top_k
    return ChatTurn(tenant=tenant, collection=collection_of(body.model, body, settings), model=body.model,
                    question=question, history=tuple(history), instructions=instructions, params=params,
                    top_k=top_k, filter=body.ragd.filter if body.ragd else None,
                    cache_read="no-cache" not in directives, cache_write="no-store" not in directives,
                    retrieval=body.model != PLAIN_MODEL)


def _header_json(citations: Sequence[Citation]) -> str:
    """Citations as an ASCII JSON header value, snippets left out (headers stay a few hundred bytes each)."""
    rows = [{"index": c.index, "document_id": c.document_id, "title": c.title[:_HEADER_TITLE_CHARS],
             "chunk_id": c.chunk_id, "score": c.score} for c in citations]
    return json.dumps(rows, ensure_ascii=True, separators=(",", ":"))


def answer_headers(prepared: Prepared) -> dict[str, str]:
    headers = {"x-ragd-cache": prepared.cache}
    if prepared.degraded:
        headers["x-ragd-degraded"] = ",".join(sorted(set(prepared.degraded)))
    if prepared.answer is not None:
        headers["x-ragd-citations"] = _header_json(prepared.answer.citations)
    elif prepared.chunks:
        headers["x-ragd-sources"] = _header_json([citation_of(i, c) for i, c in enumerate(prepared.chunks, 1)])
    return headers


async def _prepare(pipeline: Pipeline, turn: ChatTurn) -> Prepared:
    try:
        return await run_by_deadline(pipeline.prepare(turn))
    except NotFoundError as exc:  # a ragd model id (or ragd.collection) naming a collection that is not there
        if exc.code != CollectionNotFoundError.default_code:
            raise
        from_model = turn.model == f"{MODEL_PREFIX}:{turn.collection}"
        raise CollectionNotFoundError(turn.collection, param="model" if from_model else "ragd.collection") from exc


def log_answer(answer: Answer, prepared: Prepared, settings: GatewaySettings, *, pieces: int | None = None) -> None:
    """The answer's fields of the access log line; ``pieces``: a streamed answer's count of content events."""
    ctx = telemetry.current()
    if ctx is None:
        return
    ctx.fields.update({"cache": prepared.cache, "finish_reason": answer.finish_reason,
                       "prompt_tokens": answer.usage.prompt_tokens,
                       "completion_tokens": answer.usage.completion_tokens, "degraded": prepared.degraded})
    if pieces is not None:
        ctx.fields["stream_pieces"] = pieces
    if settings.log_text:
        ctx.fields.update({"question": prepared.standalone, "answer": answer.content})


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
    log_answer(answer, prepared, settings)
    await request.app.state.limiter.spend_tokens(principal, answer.usage.total_tokens)
    payload = wire.body(model=turn.model, content=with_references(answer.content, answer.citations, style),
                        finish_reason=answer.finish_reason,
                        usage=answer.usage, citations=answer.citations)
    return JSONResponse(payload, headers=answer_headers(prepared))


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
        try:  # retrieval and guard checks are done; generation, output rails and hold-back run to the deadline
            async for delta in stream_by_deadline(pipeline.stream(prepared)):
                if delta.text:
                    pieces += 1
                    yield writer.content(delta.text)
        except Exception as exc:  # after the first byte an error is an SSE event, then [DONE]
            _log.warning("stream failed", exc_info=exc)
            yield sse_error_event(exc)
            return
    finally:
        _release(prepared)
    answer = prepared.answer
    assert answer is not None
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
