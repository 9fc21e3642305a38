"""The generator client's text never carries U+FFFD: llama.cpp encodes a byte sequence the model sampled
that is not UTF-8 (here the first two bytes of a Hangul syllable, then ``abe``: recorded from SmolLM2 at
temperature 1) as U+FFFD, and the answer drops those bytes. The server is a fake (an httpx
MockTransport replaying the recorded SSE events), named so."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai

from generator.client import OpenAIGenerator, without_invalid_bytes
from services.contracts import ChatMessage, GenerationParams


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def _chunk(content: str | None = None, finish: str | None = None) -> dict[str, object]:
    delta = {} if content is None else {"content": content}
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


RECORDED = [_chunk("도서관은"), _chunk("\ufffdabe"), _chunk(" 1987년"), _chunk(finish="stop")]


def fake_llamacpp_stream(request: httpx.Request) -> httpx.Response:
    body = b"".join(_event(e) for e in RECORDED) + b"data: [DONE]\n\n"
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def test_without_invalid_bytes_keeps_every_real_character() -> None:
    assert without_invalid_bytes("도서관\ufffd은 🎉 été") == "도서관은 🎉 été"
    assert without_invalid_bytes("plain 한국어") == "plain 한국어"  # control: nothing to drop


def test_streamed_answer_from_a_fake_llamacpp_has_no_replacement_character() -> None:
    async def run() -> str:
        generator = OpenAIGenerator("http://fake-llamacpp/v1", model="m")
        await generator.aclose()
        generator._client = openai.AsyncOpenAI(  # the fake server behind the real client
            base_url="http://fake-llamacpp/v1", api_key="none", max_retries=0,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(fake_llamacpp_stream)))
        pieces = [d.text async for d in generator.stream([ChatMessage(role="user", content="q")],
                                                        GenerationParams()) if d.text]
        await generator.aclose()
        return "".join(pieces)

    text = asyncio.run(run())
    assert "\ufffd" not in text
    assert text == "도서관은abe 1987년"
