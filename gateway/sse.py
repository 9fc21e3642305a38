"""OpenAI response shapes, citations included: chat completions and legacy text completions, as one JSON
body and as SSE chunks. :data:`WIRE_FORMATS` names the two, so one serving path writes either."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.citation_forms import openwebui_sources
from gateway.openai_schema import Citation
from services import telemetry
from services.contracts import Usage

__all__ = ["CHAT", "TEXT", "WIRE_FORMATS", "ChunkWriter", "StreamWriter", "TextChunkWriter", "WireFormat",
           "completion_body", "text_completion_body", "usage_body"]


def usage_body(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def completion_body(*, model: str, content: str, finish_reason: str, usage: Usage,
                    citations: list[Citation]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{telemetry.new_request_id()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage_body(usage),
        "citations": [c.model_dump() for c in citations],
        "sources": openwebui_sources(citations),
    }


def text_completion_body(*, model: str, content: str, finish_reason: str, usage: Usage,
                         citations: list[Citation]) -> dict[str, Any]:
    """A legacy ``text_completion`` body (``choices[].text``), as vLLM and LiteLLM send it."""
    return {
        "id": f"cmpl-{telemetry.new_request_id()}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": content, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage_body(usage),
        "citations": [c.model_dump() for c in citations],
    }


class StreamWriter(Protocol):
    """Formats one stream's SSE events."""

    def start(self) -> bytes: ...
    def content(self, text: str) -> bytes: ...
    def sources(self, citations: list[Citation]) -> list[bytes]: ...
    def finish(self, finish_reason: str, citations: list[Citation]) -> bytes: ...
    def usage(self, usage: Usage) -> bytes: ...
    def done(self) -> bytes: ...


class ChunkWriter:
    """Formats one stream's ``chat.completion.chunk`` events (same id and created throughout)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = f"chatcmpl-{telemetry.new_request_id()}"
        self.created = int(time.time())

    def _event(self, payload: dict[str, Any]) -> bytes:
        base = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        return f"data: {json.dumps({**base, **payload}, ensure_ascii=False)}\n\n".encode()

    def start(self) -> bytes:
        """The first chunk: the assistant's role."""
        return self._event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "logprobs": None, "finish_reason": None}]})

    def content(self, text: str) -> bytes:
        return self._event({"choices": [{"index": 0, "delta": {"content": text}, "logprobs": None,
                                         "finish_reason": None}]})

    def sources(self, citations: list[Citation]) -> list[bytes]:
        """One chunk per source with an empty delta and an Open WebUI ``source`` event
        (:mod:`gateway.citation_forms`); sent before :meth:`finish`."""
        return [self._event({"choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": None}],
                             "event": {"type": "source", "data": source}})
                for source in openwebui_sources(citations)]

    def finish(self, finish_reason: str, citations: list[Citation]) -> bytes:
        """The last choice chunk; carries the ``citations`` extension field and Open WebUI's ``sources``."""
        return self._event({"choices": [{"index": 0, "delta": {}, "logprobs": None,
                                         "finish_reason": finish_reason}],
                            "citations": [c.model_dump() for c in citations],
                            "sources": openwebui_sources(citations)})

    def usage(self, usage: Usage) -> bytes:
        return self._event({"choices": [], "usage": usage_body(usage)})

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"


class TextChunkWriter:
    """Formats one stream's legacy ``text_completion`` events (``choices[].text``; no role chunk)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = f"cmpl-{telemetry.new_request_id()}"
        self.created = int(time.time())

    def _event(self, payload: dict[str, Any]) -> bytes:
        base = {"id": self.id, "object": "text_completion", "created": self.created, "model": self.model}
        return f"data: {json.dumps({**base, **payload}, ensure_ascii=False)}\n\n".encode()

    def start(self) -> bytes:
        return b""

    def content(self, text: str) -> bytes:
        return self._event({"choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": None}]})

    @staticmethod
    def sources(citations: list[Citation]) -> list[bytes]:
        """No events: Open WebUI's source events belong to chat streams."""
        return []

    def finish(self, finish_reason: str, citations: list[Citation]) -> bytes:
        """The last choice chunk; carries the ``citations`` extension field."""
        return self._event({"choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": finish_reason}],
                            "citations": [c.model_dump() for c in citations]})

    def usage(self, usage: Usage) -> bytes:
        return self._event({"choices": [], "usage": usage_body(usage)})

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"


@dataclass(frozen=True)
class WireFormat:
    """One OpenAI response family: its JSON body and its stream's writer."""

    body: Callable[..., dict[str, Any]]
    writer: Callable[[str], StreamWriter]


CHAT = WireFormat(body=completion_body, writer=ChunkWriter)
TEXT = WireFormat(body=text_completion_body, writer=TextChunkWriter)
WIRE_FORMATS: dict[str, WireFormat] = {"chat": CHAT, "text": TEXT}
