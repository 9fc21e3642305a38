"""POST /v1/chat/completions (OpenAI-compatible, streaming included) and GET /v1/models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.deadline import run_by_deadline
from gateway.deps import ChatContext, ChatContextDep, ComponentsDep, PrincipalDep
from gateway.frontend_tasks import FrontendTask, detect_task
from gateway.openai_schema import ChatCompletionRequest, MessageIn
from gateway.pipeline import ChatTurn
from gateway.routes.embeddings import EMBEDDING_MODEL
from gateway.routes.serving import (
    MODEL_PREFIX,
    PLAIN_MODEL,
    answer_headers,
    collection_of,
    log_answer,
    make_turn,
    reference_style,
    respond,
)
from gateway.settings import GatewaySettings
from gateway.sse import CHAT, ChunkWriter, completion_body
from gateway.task_answers import answer_task
from services import telemetry
from services.contracts import ChatMessage, Usage
from services.errors import InvalidRequestError

__all__ = ["MODEL_PREFIX", "PLAIN_MODEL", "answer_headers", "collection_of", "log_answer", "router", "to_turn"]

router = APIRouter()


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
    return make_turn(body, question=history[-1].content, history=history[:-1],
                     instructions="\n".join(instructions) or None,
                     max_tokens=body.max_completion_tokens or body.max_tokens,
                     max_tokens_param="max_tokens" if body.max_tokens else "max_completion_tokens",
                     tenant=tenant, settings=settings, cache_control=cache_control)


def _check_tools(body: ChatCompletionRequest) -> None:
    """``tools`` are ignored (frontends send theirs with every request); a ``tool_choice`` that
    demands a call cannot be honoured, and says so."""
    choice = body.tool_choice
    if choice == "required" or isinstance(choice, dict):
        raise InvalidRequestError("ragd answers in text and never calls tools: send tool_choice 'auto' or "
                                  "'none', or leave it out.", param="tool_choice", code="tools_not_supported")


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, context: ChatContextDep) -> Any:
    _check_tools(body)
    turn = to_turn(body, tenant=context.principal.tenant, settings=context.settings,
                   cache_control=request.headers.get("cache-control", ""))
    task = detect_task([(m.role, m.content) for m in turn.history] + [("user", turn.question)])
    if task is not None:
        return await _task_reply(task, turn, body, request, context)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await respond(turn, request, context, stream=body.stream, include_usage=include_usage, wire=CHAT,
                         style=reference_style(body, context.settings))


async def _task_reply(task: FrontendTask, turn: ChatTurn, body: ChatCompletionRequest, request: Request,
                      context: ChatContext) -> Any:
    """A frontend's task request (:mod:`gateway.task_answers`): no retrieval, no cache, no citations."""
    pipeline, settings = context.pipeline, context.settings
    screened, blocked = await run_by_deadline(pipeline.screen_user_texts(turn.tenant, task.user_texts))
    generate = settings.task_answers == "generate" or (settings.task_answers == "auto"
                                                        and settings.generator_url is not None)
    result = await run_by_deadline(answer_task(
        task, turn.question, screened=None if blocked else screened, generate=generate, params=turn.params,
        generator=pipeline.generator, guard=pipeline.guard, tenant=turn.tenant))
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
    yield writer.start()
    if content:
        yield writer.content(content)
    yield writer.finish("stop", [])
    if body.stream_options and body.stream_options.include_usage:
        yield writer.usage(usage)
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
