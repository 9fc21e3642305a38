"""OpenAI-compatible wire models of the gateway (permissive: unknown fields are ignored)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.contracts import CollectionConfig, DocumentIn
from services.filters import MetadataFilter

__all__ = [
    "ChatCompletionRequest",
    "Citation",
    "CollectionCreate",
    "CompletionRequest",
    "ContentPart",
    "DocumentsCreate",
    "EmbeddingsRequest",
    "MessageIn",
    "SearchRequest",
    "StreamOptions",
]


class _Permissive(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Permissive):
    type: str
    text: str | None = None


class MessageIn(_Permissive):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(_Permissive):
    include_usage: bool = False


class RagdOptions(_Permissive):
    """The documented ``ragd`` extension object of a chat request."""

    collection: str | None = Field(None, description="Collection to search (overrides the model name).")
    top_k: int | None = Field(None, ge=1, le=20, description="Sources given to the generator.")
    filter: MetadataFilter | None = Field(None, description="Search only documents whose metadata match this "
                                                            "(Chroma's where vocabulary; see the README).")
    references: Literal["fields", "markdown"] | None = Field(
        None, description="'markdown' also appends the citations to the answer text as a numbered reference "
                          "list with titles; 'fields' only in the extension fields. None: the server's setting.")


class ChatCompletionRequest(_Permissive):
    model: str
    messages: list[MessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    n: int | None = Field(None, ge=1, le=1)
    ragd: RagdOptions | None = None
    collection: str | None = Field(None, description="Shorthand of ragd.collection.")
    # accepted and ignored, except a tool_choice that demands a call (ragd answers in text, never with tool calls)
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None


class CompletionRequest(_Permissive):
    """Legacy ``POST /v1/completions`` (as vLLM and LiteLLM serve it): the prompt is the question."""

    model: str
    prompt: str | list[str]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    n: int | None = Field(None, ge=1, le=1)
    best_of: int | None = Field(None, ge=1, le=1)
    echo: bool = False
    logprobs: int | None = None
    suffix: str | None = None
    ragd: RagdOptions | None = None
    collection: str | None = Field(None, description="Shorthand of ragd.collection.")


class EmbeddingsRequest(_Permissive):
    """``POST /v1/embeddings``; ``input_type`` and ``truncate`` are ragd's documented extensions."""

    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None
    input_type: Literal["query", "passage"] | None = Field(
        None, description="e5's prefix: 'query' (questions, and symmetric similarity, as e5 advises) or "
                          "'passage' (texts to be found; what the retriever indexes). Default: the model id's "
                          "('ragd-embed:passage' is passage), else query.")
    truncate: bool | None = Field(
        None, description="Embed the first tokens of a text longer than the model reads instead of refusing "
                          "the request. Default: on for passages (documents), off for queries.")


class Citation(BaseModel):
    """One source an answer cites: the documented ``citations`` extension field."""

    index: int = Field(description="The number the answer uses, as in [1].")
    document_id: str
    title: str
    chunk_id: str
    score: float
    snippet: str


class CollectionCreate(_Permissive):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    config: CollectionConfig = CollectionConfig()


class DocumentsCreate(_Permissive):
    documents: list[DocumentIn] = Field(min_length=1)


class SearchRequest(_Permissive):
    query: str = Field(min_length=1, max_length=4000)
    top_k: int = Field(5, ge=1, le=100)
    filter: MetadataFilter | None = Field(None, description="Search only documents whose metadata match this "
                                                            "(Chroma's where vocabulary; see the README).")


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
