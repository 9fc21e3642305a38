"""POST /v1/completions: the legacy completions API (as vLLM and LiteLLM serve it) over the chat pipeline.

The prompt is the question: it runs the same rails, cache, retrieval, generation and citations as a
one-message chat, and answers in the ``text_completion`` shape (``choices[].text``), streamed or not.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gateway.deps import ChatContextDep
from gateway.openai_schema import CompletionRequest
from gateway.pipeline import ChatTurn
from gateway.routes.serving import respond
from gateway.settings import GatewaySettings
from gateway.sse import TEXT
from gateway.turns import make_turn
from services.errors import InvalidRequestError

__all__ = ["router", "turn_of_completion"]

router = APIRouter()


def _prompt(body: CompletionRequest, settings: GatewaySettings) -> str:
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) != 1:
        raise InvalidRequestError("Send exactly one prompt (a string, or a list of one string).", param="prompt")
    prompt = prompts[0]
    if not prompt.strip():
        raise InvalidRequestError("The prompt must not be empty.", param="prompt")
    if len(prompt) > settings.max_prompt_chars:
        raise InvalidRequestError(f"The prompt is too long (at most {settings.max_prompt_chars} characters).",
                                  param="prompt", code="context_length_exceeded")
    return prompt


def turn_of_completion(body: CompletionRequest, *, tenant: str, settings: GatewaySettings,
                       cache_control: str) -> ChatTurn:
    """The legacy request as a one-question turn; options ragd cannot honour are refused, not ignored."""
    unsupported = {"echo": body.echo, "suffix": body.suffix is not None, "logprobs": bool(body.logprobs)}
    for param, used in unsupported.items():
        if used:
            raise InvalidRequestError(f"'{param}' is not supported by ragd's completions.", param=param)
    return make_turn(body, question=_prompt(body, settings), history=(), instructions=None,
                     max_tokens=body.max_tokens, max_tokens_param="max_tokens", tenant=tenant, settings=settings,
                     cache_control=cache_control)


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request, context: ChatContextDep) -> Any:
    turn = turn_of_completion(body, tenant=context.principal.tenant, settings=context.settings,
                              cache_control=request.headers.get("cache-control", ""))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await respond(turn, request, context, stream=body.stream, include_usage=include_usage, wire=TEXT)
