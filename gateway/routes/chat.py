"""POST /v1/chat/completions (OpenAI-compatible, streaming included) and GET /v1/models."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from cache.eligibility import cache_directives
from gateway.deps import ChatContextDep, ComponentsDep, PrincipalDep
from gateway.openai_schema import ChatCompletionRequest, MessageIn
from gateway.pipeline import Answer, ChatTurn, Pipeline, Prepared
from gateway.routes.embeddings import EMBEDDING_MODEL
from gateway.settings import GatewaySettings
from gateway.sse import ChunkWriter, completion_body
from services import telemetry
from services.app import sse_error_event
from services.contracts import ChatMessage, GenerationParams
from services.errors import CollectionNotFoundError, DependencyTimeoutError, InvalidRequestError, NotFoundError

__all__ = ["MODEL_PREFIX", "answer_headers", "log_answer", "router", "to_turn"]

router = APIRouter()
_log = logging.getLogger("ragd.chat")
MODEL_PREFIX = "ragd"


def collection_of(model: str, request: ChatCompletionRequest, settings: GatewaySettings) -> str:
    explicit = (request.ragd.collection if request.ragd else None) or request.collection
    if explicit:
        return explicit
    if model == MODEL_PREFIX:
        return settings.default_collection
    if model.startswith(MODEL_PREFIX + ":") and len(model) > len(MODEL_PREFIX) + 1:
        return model[len(MODEL_PREFIX) + 1:]
    raise NotFoundError(f"The model '{model[:100]}' does not exist. Use 'ragd' or 'ragd:<collection>'.",
                        param="model", code="model_not_found")


def _text(message: MessageIn, index: int) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise InvalidRequestError("Only text content parts are supported.",
                                      param=f"messages.{index}.content")
        parts.append(part.text)
    return "\n".join(parts)


def to_turn(body: ChatCompletionRequest, *, tenant: str, settings: GatewaySettings,
            cache_control: str) -> ChatTurn:
    """The one place the OpenAI request becomes an internal ChatTurn: all defaulting and limits."""
    if len(body.messages) > settings.max_messages:
        raise InvalidRequestError(f"Too many messages (at most {settings.max_messages}).", param="messages")
    instructions: list[str] = []
    history: list[ChatMessage] = []
    total = 0
    for index, message in enumerate(body.messages):
        text = _text(message, index)
        total += len(text)
        if message.role in ("system", "developer"):
            instructions.append(text)
        elif message.role in ("user", "assistant"):
            history.append(ChatMessage(role=message.role, content=text))
        else:
            raise InvalidRequestError("Tool messages are not supported.", param=f"messages.{index}.role")
    if total > settings.max_prompt_chars:
        raise InvalidRequestError(f"The messages are too long (at most {settings.max_prompt_chars} characters).",
                                  param="messages", code="context_length_exceeded")
    if not history or history[-1].role != "user" or not history[-1].content.strip():
        raise InvalidRequestError("The last message must be a non-empty user message.", param="messages")
    max_tokens = body.max_completion_tokens or body.max_tokens or settings.default_max_tokens
    if max_tokens > settings.max_tokens_limit:
        raise InvalidRequestError(f"max_tokens must be at most {settings.max_tokens_limit}.",
                                  param="max_tokens" if body.max_tokens else "max_completion_tokens")
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    if len(stop) > 4:
        raise InvalidRequestError("At most 4 stop sequences.", param="stop")
    params = GenerationParams(temperature=0.0 if body.temperature is None else body.temperature,
                              top_p=1.0 if body.top_p is None else body.top_p, max_tokens=max_tokens,
                              stop=stop, seed=body.seed)
    directives = cache_directives(cache_control)
    top_k = (body.ragd.top_k if body.ragd else None) or settings.top_k
    return ChatTurn(tenant=tenant, collection=collection_of(body.model, body, settings), model=body.model,
                    question=history[-1].content, history=tuple(history[:-1]),
                    instructions="\n".join(instructions) or None, params=params, top_k=top_k,
                    filter=body.ragd.filter if body.ragd else None,
                    cache_read="no-cache" not in directives, cache_write="no-store" not in directives)


def answer_headers(prepared: Prepared) -> dict[str, str]:
    headers = {"x-ragd-cache": prepared.cache}
    if prepared.degraded:
        headers["x-ragd-degraded"] = ",".join(sorted(set(prepared.degraded)))
    return headers


@asynccontextmanager
async def _within_deadline() -> AsyncIterator[None]:
    """The request's deadline bounds every stage inside; running past it is a 504."""
    ctx = telemetry.current()
    remaining = ctx.remaining() if ctx is not None else None
    try:
        async with asyncio.timeout(remaining):
            yield
    except TimeoutError as exc:
        raise DependencyTimeoutError("The request did not finish within its deadline.",
                                     dependency="deadline") from exc


async def _prepare(pipeline: Pipeline, turn: ChatTurn) -> Prepared:
    try:
        async with _within_deadline():
            return await pipeline.prepare(turn)
    except NotFoundError as exc:  # a ragd model id (or ragd.collection) naming a collection that is not there
        if exc.code != CollectionNotFoundError.default_code:
            raise
        from_model = turn.model == f"{MODEL_PREFIX}:{turn.collection}"
        raise CollectionNotFoundError(turn.collection, param="model" if from_model else "ragd.collection") from exc


def log_answer(answer: Answer, prepared: Prepared, settings: GatewaySettings) -> None:
    ctx = telemetry.current()
    if ctx is None:
        return
    ctx.fields.update({"cache": prepared.cache, "finish_reason": answer.finish_reason,
                       "prompt_tokens": answer.usage.prompt_tokens,
                       "completion_tokens": answer.usage.completion_tokens, "degraded": prepared.degraded})
    if settings.log_text:
        ctx.fields.update({"question": prepared.standalone, "answer": answer.content})


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, context: ChatContextDep) -> Any:
    principal, pipeline, settings = context.principal, context.pipeline, context.settings
    turn = to_turn(body, tenant=principal.tenant, settings=settings,
                   cache_control=request.headers.get("cache-control", ""))
    prepared = await _prepare(pipeline, turn)
    if not body.stream:
        async with _within_deadline():
            answer = await pipeline.answer(prepared)
        log_answer(answer, prepared, settings)
        await request.app.state.limiter.spend_tokens(principal, answer.usage.total_tokens)
        payload = completion_body(model=body.model, content=answer.content, finish_reason=answer.finish_reason,
                                  usage=answer.usage, citations=answer.citations)
        return JSONResponse(payload, headers=answer_headers(prepared))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    on_done = partial(request.app.state.limiter.spend_tokens, principal)
    return StreamingResponse(_sse(pipeline, prepared, body.model, include_usage, settings, on_done),
                             media_type="text/event-stream",
                             headers={**answer_headers(prepared), "cache-control": "no-cache"})


async def _sse(pipeline: Pipeline, prepared: Prepared, model: str, include_usage: bool,
               settings: GatewaySettings, on_done: Callable[[int], Awaitable[None]]) -> AsyncIterator[bytes]:
    writer = ChunkWriter(model)
    yield writer.role()
    try:
        async with _within_deadline():
            async for delta in pipeline.stream(prepared):
                if delta.text:
                    yield writer.content(delta.text)
    except Exception as exc:  # after the first byte an error is an SSE event, then [DONE]
        _log.warning("stream failed", exc_info=exc)
        yield sse_error_event(exc)
        return
    answer = prepared.answer
    assert answer is not None
    log_answer(answer, prepared, settings)
    await on_done(answer.usage.total_tokens)
    yield writer.finish(answer.finish_reason, answer.citations)
    if include_usage:
        yield writer.usage(answer.usage)
    yield writer.done()


@router.get("/v1/models")
async def list_models(principal: PrincipalDep, components: ComponentsDep) -> Any:
    collections = await components.corpus.list_collections(principal.tenant)
    names = [MODEL_PREFIX] + [f"{MODEL_PREFIX}:{c.name}" for c in collections] + [EMBEDDING_MODEL]
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "ragd"}
                                       for n in names]}
