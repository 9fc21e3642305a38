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
from gateway.citation_forms import markdown_references
from gateway.deps import ChatContext, ChatContextDep, ComponentsDep, PrincipalDep
from gateway.frontend_tasks import FrontendTask, detect_task
from gateway.openai_schema import ChatCompletionRequest, Citation, MessageIn
from gateway.pipeline import Answer, ChatTurn, Pipeline, Prepared
from gateway.routes.embeddings import EMBEDDING_MODEL
from gateway.settings import GatewaySettings
from gateway.sse import ChunkWriter, completion_body
from gateway.task_answers import answer_task
from services import telemetry
from services.app import sse_error_event
from services.contracts import ChatMessage, GenerationParams, Usage
from services.errors import DependencyTimeoutError, InvalidRequestError, NotFoundError

__all__ = ["MODEL_PREFIX", "PLAIN_MODEL", "answer_headers", "log_answer", "reference_style", "router", "to_turn",
           "with_references"]

router = APIRouter()
_log = logging.getLogger("ragd.chat")
MODEL_PREFIX = "ragd"
PLAIN_MODEL = "ragd-chat"  # plain generation: no retrieval, no citations, no cache (e.g. a frontend's task model)


def collection_of(model: str, request: ChatCompletionRequest, settings: GatewaySettings) -> str:
    if model == EMBEDDING_MODEL:
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


def _check_tools(body: ChatCompletionRequest) -> None:
    """``tools`` are ignored (frontends send theirs with every request); a ``tool_choice`` that
    demands a call cannot be honoured, and says so."""
    choice = body.tool_choice
    if choice == "required" or isinstance(choice, dict):
        raise InvalidRequestError("ragd answers in text and never calls tools: send tool_choice 'auto' or "
                                  "'none', or leave it out.", param="tool_choice", code="tools_not_supported")


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
    _check_tools(body)
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
                    cache_read="no-cache" not in directives, cache_write="no-store" not in directives,
                    retrieval=body.model != PLAIN_MODEL)


def reference_style(body: ChatCompletionRequest, settings: GatewaySettings) -> str:
    """Where the answer carries its citations: the request's ``ragd.references``, else the server's."""
    return (body.ragd.references if body.ragd else None) or settings.references


def with_references(content: str, citations: list[Citation], style: str) -> str:
    """The answer text, with its numbered references appended when the style is ``markdown``."""
    return content + markdown_references(citations) if style == "markdown" else content


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
    except NotFoundError as exc:
        raise NotFoundError(f"The model '{turn.model[:100]}' does not exist.", param="model",
                            code="model_not_found") from exc


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
    task = detect_task([(m.role, m.content) for m in turn.history] + [("user", turn.question)])
    if task is not None:
        return await _task_reply(task, turn, body, request, context)
    prepared = await _prepare(pipeline, turn)
    style = reference_style(body, settings)
    if not body.stream:
        async with _within_deadline():
            answer = await pipeline.answer(prepared)
        log_answer(answer, prepared, settings)
        await request.app.state.limiter.spend_tokens(principal, answer.usage.total_tokens)
        payload = completion_body(model=body.model, content=with_references(answer.content, answer.citations, style),
                                  finish_reason=answer.finish_reason, usage=answer.usage, citations=answer.citations)
        return JSONResponse(payload, headers=answer_headers(prepared))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    on_done = partial(request.app.state.limiter.spend_tokens, principal)
    return StreamingResponse(_sse(pipeline, prepared, body.model, include_usage, settings, on_done, style),
                             media_type="text/event-stream",
                             headers={**answer_headers(prepared), "cache-control": "no-cache"})


async def _task_reply(task: FrontendTask, turn: ChatTurn, body: ChatCompletionRequest, request: Request,
                      context: ChatContext) -> Any:
    """A frontend's task request (:mod:`gateway.task_answers`): no retrieval, no cache, no citations."""
    pipeline, settings = context.pipeline, context.settings
    screened, blocked = await pipeline.screen_user_texts(turn.tenant, task.user_texts)
    generate = settings.task_answers == "generate" or (settings.task_answers == "auto"
                                                        and settings.generator_url is not None)
    async with _within_deadline():
        result = await answer_task(task, turn.question, screened=None if blocked else screened, generate=generate,
                                   params=turn.params, generator=pipeline.generator, guard=pipeline.guard,
                                   tenant=turn.tenant)
    ctx = telemetry.current()
    if ctx is not None:
        ctx.fields.update({"task": task.kind, "task_answer": result.how, "cache": "bypass", "finish_reason": "stop",
                           "prompt_tokens": result.usage.prompt_tokens,
                           "completion_tokens": result.usage.completion_tokens})
        if settings.log_text:
            ctx.fields.update({"question": turn.question, "answer": result.content})
    await request.app.state.limiter.spend_tokens(context.principal, result.usage.total_tokens)
    headers = {"x-ragd-cache": "bypass", "x-ragd-task": task.kind}
    if not body.stream:
        return JSONResponse(completion_body(model=body.model, content=result.content, finish_reason="stop",
                                            usage=result.usage, citations=[]), headers=headers)
    return StreamingResponse(_task_sse(body, result.content, result.usage), media_type="text/event-stream",
                             headers={**headers, "cache-control": "no-cache"})


async def _task_sse(body: ChatCompletionRequest, content: str, usage: Usage) -> AsyncIterator[bytes]:
    writer = ChunkWriter(body.model)
    yield writer.role()
    if content:
        yield writer.content(content)
    yield writer.finish("stop", [])
    if body.stream_options and body.stream_options.include_usage:
        yield writer.usage(usage)
    yield writer.done()


async def _sse(pipeline: Pipeline, prepared: Prepared, model: str, include_usage: bool,
               settings: GatewaySettings, on_done: Callable[[int], Awaitable[None]],
               style: str = "fields") -> AsyncIterator[bytes]:
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
    references = with_references("", answer.citations, style)
    if references:
        yield writer.content(references)
    for event in writer.sources(answer.citations):
        yield event
    yield writer.finish(answer.finish_reason, answer.citations)
    if include_usage:
        yield writer.usage(answer.usage)
    yield writer.done()


@router.get("/v1/models")
async def list_models(principal: PrincipalDep, components: ComponentsDep) -> Any:
    collections = await components.corpus.list_collections(principal.tenant)
    chat = [MODEL_PREFIX] + [f"{MODEL_PREFIX}:{c.name}" for c in collections] + [PLAIN_MODEL]
    data = [_model_entry(n, "chat") for n in chat] + [_model_entry(EMBEDDING_MODEL, "embedding")]
    return {"object": "list", "data": data}


def _model_entry(model_id: str, kind: str) -> dict[str, Any]:
    """One ``/v1/models`` entry. ``type`` says what it serves (as Together's model list does);
    ``info.meta.hidden`` is the field Open WebUI's model selector hides a model by, so a chat
    frontend does not offer the embeddings model for chat."""
    entry: dict[str, Any] = {"id": model_id, "object": "model", "created": 0, "owned_by": "ragd", "type": kind}
    if kind != "chat":
        entry["info"] = {"meta": {"hidden": True, "description": "Embeddings only: POST /v1/embeddings."}}
    return entry
