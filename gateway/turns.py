"""The one place a request becomes an internal :class:`ChatTurn`: model names, collections, generation
defaults, limits and cache directives (shared by the chat and completions routes and the fast path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cache.eligibility import cache_directives
from gateway.openai_schema import ChatCompletionRequest, MessageIn, RagdOptions
from gateway.pipeline import ChatTurn
from gateway.settings import GatewaySettings
from services.contracts import ChatMessage, GenerationParams
from services.errors import InvalidRequestError, NotFoundError

__all__ = ["EMBEDDING_MODEL", "MODEL_PREFIX", "PLAIN_MODEL", "Routed", "collection_of", "make_turn",
           "reference_style", "to_turn"]

MODEL_PREFIX = "ragd"
PLAIN_MODEL = "ragd-chat"  # plain generation: no retrieval, no citations, no cache (e.g. a frontend's task model)
EMBEDDING_MODEL = "ragd-embed"


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
