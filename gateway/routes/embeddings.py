"""POST /v1/embeddings (OpenAI-compatible): the retriever's dense embedder, the vectors the index holds.

Clients that cannot send ragd's ``input_type`` (LangChain's ``OpenAIEmbeddings``, LlamaIndex's
``OpenAIEmbedding``) choose it by model id: ``ragd-embed:passage`` embeds documents as e5 passages,
``ragd-embed`` / ``ragd-embed:query`` embeds questions. A passage longer than the model reads is
embedded by its first tokens unless the request says ``truncate: false``; a query that long is refused.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request

from gateway.deps import ComponentsDep, LimitedPrincipalDep, SettingsDep
from gateway.openai_schema import EmbeddingsRequest
from gateway.turns import EMBEDDING_MODEL
from services.contracts import EmbedRequest
from services.errors import InvalidRequestError, NotFoundError

__all__ = ["EMBEDDING_MODEL", "EMBEDDING_MODELS", "router"]

router = APIRouter()
InputType = Literal["query", "passage"]
EMBEDDING_MODELS: dict[str, InputType | None] = {
    EMBEDDING_MODEL: None, f"{EMBEDDING_MODEL}:query": "query", f"{EMBEDDING_MODEL}:passage": "passage"}
"""Model ids of the embedder and the input type each fixes (None: the request's, else query)."""


def input_type_of(body: EmbeddingsRequest) -> InputType:
    fixed = EMBEDDING_MODELS[body.model]
    if fixed is not None and body.input_type is not None and body.input_type != fixed:
        raise InvalidRequestError(f"The model '{body.model}' embeds {fixed}s; input_type '{body.input_type}' "
                                  f"contradicts it.", param="input_type")
    return fixed or body.input_type or "query"


def texts_of(body: EmbeddingsRequest, max_inputs: int) -> list[str]:
    """The request's texts, or a 400: ragd takes text, not token arrays, and no empty text."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        raise InvalidRequestError("input must not be empty.", param="input")
    if not all(isinstance(text, str) for text in texts):
        raise InvalidRequestError(f"{EMBEDDING_MODEL} takes text: send strings, not token arrays (LangChain: "
                                  "OpenAIEmbeddings(check_embedding_ctx_length=False)).", param="input")
    if len(texts) > max_inputs:
        raise InvalidRequestError(f"Too many inputs: {len(texts)} (at most {max_inputs} per request).",
                                  param="input")
    strings = [str(text) for text in texts]
    for index, text in enumerate(strings):
        if not text.strip():
            raise InvalidRequestError(f"Input {index} is empty.", param="input")
    return strings


def _encoded(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # little-endian float32, as OpenAI sends it
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request, principal: LimitedPrincipalDep,
                     components: ComponentsDep, settings: SettingsDep) -> Any:
    if body.model not in EMBEDDING_MODELS:
        raise NotFoundError(f"The model '{body.model[:100]}' does not exist. Use '{EMBEDDING_MODEL}' (questions) or "
                            f"'{EMBEDDING_MODEL}:passage' (documents) for embeddings.",
                            param="model", code="model_not_found")
    texts = texts_of(body, settings.max_embedding_inputs)
    input_type = input_type_of(body)
    truncate = body.truncate if body.truncate is not None else input_type == "passage"
    result = await components.retriever.embed(EmbedRequest(texts=texts, input_type=input_type,
                                                           truncate=truncate, dimensions=body.dimensions))
    tokens = sum(result.tokens)
    await request.app.state.limiter.spend_tokens(principal, tokens)
    data = [{"object": "embedding", "index": i, "embedding": _encoded(vector, body.encoding_format)}
            for i, vector in enumerate(result.vectors)]
    return {"object": "list", "data": data, "model": body.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
