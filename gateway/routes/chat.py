"""POST /v1/chat/completions (OpenAI-compatible, streaming included) and GET /v1/models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gateway.deadline import run_by_deadline
from gateway.deps import ChatContext, ChatContextDep, ComponentsDep, PrincipalDep
from gateway.frontend_tasks import FrontendTask, detect_task
from gateway.openai_schema import ChatCompletionRequest
from gateway.pipeline import ChatTurn
from gateway.routes.serving import respond
from gateway.sse import CHAT, ChunkWriter, completion_body
from gateway.task_answers import answer_task
from gateway.turns import EMBEDDING_MODEL, MODEL_PREFIX, PLAIN_MODEL, reference_style, to_turn
from services import telemetry
from services.contracts import Usage
from services.errors import InvalidRequestError

__all__ = ["router"]

router = APIRouter()


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
async def list_models(principal: PrincipalDep, components: ComponentsDep, request: Request) -> Any:
    """The chat models (``ragd``, one per collection, ``ragd-chat``) and the embeddings model. Where no language
    model can write without sources, ``ragd-chat`` serves a frontend's tasks only and is hidden from selectors."""
    collections = await components.corpus.list_collections(principal.tenant)
    chat = [MODEL_PREFIX] + [f"{MODEL_PREFIX}:{c.name}" for c in collections]
    plain = _model_entry(PLAIN_MODEL, "chat")
    if not request.app.state.pipeline.has_model:
        plain["info"] = {"meta": {"hidden": True, "description": "Frontend tasks only (titles, tags): this server "
                                                                 "has no language model to chat without retrieval."}}
    data = [_model_entry(n, "chat") for n in chat] + [plain, _model_entry(EMBEDDING_MODEL, "embedding")]
    return {"object": "list", "data": data}


def _model_entry(model_id: str, kind: str) -> dict[str, Any]:
    """One ``/v1/models`` entry. ``type`` says what it serves (as Together's model list does);
    ``info.meta.hidden`` is the field Open WebUI's model selector hides a model by, so a chat
    frontend does not offer the embeddings model for chat."""
    entry: dict[str, Any] = {"id": model_id, "object": "model", "created": 0, "owned_by": "ragd", "type": kind}
    if kind != "chat":
        entry["info"] = {"meta": {"hidden": True, "description": "Embeddings only: POST /v1/embeddings."}}
    return entry
