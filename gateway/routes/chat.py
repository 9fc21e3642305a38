"""POST /v1/chat/completions (OpenAI-compatible, streaming included) and GET /v1/models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gateway.deps import ChatContextDep, ComponentsDep, PrincipalDep
from gateway.openai_schema import ChatCompletionRequest, MessageIn
from gateway.pipeline import ChatTurn
from gateway.routes.embeddings import EMBEDDING_MODEL
from gateway.routes.serving import MODEL_PREFIX, answer_headers, collection_of, log_answer, make_turn, respond
from gateway.settings import GatewaySettings
from gateway.sse import CHAT
from services.contracts import ChatMessage
from services.errors import InvalidRequestError

__all__ = ["MODEL_PREFIX", "answer_headers", "collection_of", "log_answer", "router", "to_turn"]

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


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, context: ChatContextDep) -> Any:
    turn = to_turn(body, tenant=context.principal.tenant, settings=context.settings,
                   cache_control=request.headers.get("cache-control", ""))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await respond(turn, request, context, stream=body.stream, include_usage=include_usage, wire=CHAT)


@router.get("/v1/models")
async def list_models(principal: PrincipalDep, components: ComponentsDep) -> Any:
    collections = await components.corpus.list_collections(principal.tenant)
    names = [MODEL_PREFIX] + [f"{MODEL_PREFIX}:{c.name}" for c in collections] + [EMBEDDING_MODEL]
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "ragd"}
                                       for n in names]}
