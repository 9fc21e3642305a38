"""How an answer goes back to the client as one JSON body: its citations (in the body, in headers, or as
Markdown references), its access-log fields and the tokens it spends. Shared by the answering routes and
the exact-hit fast path, so a hit answered either way reads and counts the same."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence

from fastapi.responses import JSONResponse

from gateway.citation_forms import markdown_references
from gateway.openai_schema import Citation
from gateway.pipeline import Answer, Prepared, citation_of
from gateway.settings import GatewaySettings
from gateway.sse import WireFormat
from services import telemetry

__all__ = ["answer_headers", "json_answer", "log_answer", "with_references"]

_HEADER_TITLE_CHARS = 100


def with_references(content: str, citations: list[Citation], style: str) -> str:
    """The answer text, with its numbered references appended when the style is ``markdown``."""
    return content + markdown_references(citations) if style == "markdown" else content


def _header_json(citations: Sequence[Citation]) -> str:
    """Citations as an ASCII JSON header value, snippets left out (headers stay a few hundred bytes each)."""
    rows = [{"index": c.index, "document_id": c.document_id, "title": c.title[:_HEADER_TITLE_CHARS],
             "chunk_id": c.chunk_id, "score": c.score} for c in citations]
    return json.dumps(rows, ensure_ascii=True, separators=(",", ":"))


def answer_headers(prepared: Prepared, answer: Answer | None = None) -> dict[str, str]:
    """The answer's headers: its citations once it is known (``answer``, or a hit's), else the numbered
    sources it is to be generated from (a stream's headers go out before its text)."""
    headers = {"x-ragd-cache": prepared.cache}
    if prepared.degraded:
        headers["x-ragd-degraded"] = ",".join(sorted(set(prepared.degraded)))
    known = answer or prepared.answer
    if known is not None:
        headers["x-ragd-citations"] = _header_json(known.citations)
    elif prepared.chunks:
        headers["x-ragd-sources"] = _header_json([citation_of(i, c) for i, c in enumerate(prepared.chunks, 1)])
    return headers


def log_answer(answer: Answer, prepared: Prepared, settings: GatewaySettings, *, pieces: int | None = None) -> None:
    """The answer's fields of the access log line; ``pieces``: a streamed answer's count of content events."""
    ctx = telemetry.current()
    if ctx is None:
        return
    ctx.fields.update({"cache": prepared.cache, "finish_reason": answer.finish_reason,
                       "prompt_tokens": answer.usage.prompt_tokens,
                       "completion_tokens": answer.usage.completion_tokens, "degraded": prepared.degraded})
    if pieces is not None:
        ctx.fields["stream_pieces"] = pieces
    if settings.log_text:
        ctx.fields.update({"question": prepared.standalone, "answer": answer.content})


async def json_answer(prepared: Prepared, answer: Answer, *, model: str, wire: WireFormat, style: str,
                      settings: GatewaySettings, spend: Callable[[int], Awaitable[None]]) -> JSONResponse:
    """The finished ``answer`` as one body in ``wire``'s format: logged, its tokens spent."""
    log_answer(answer, prepared, settings)
    await spend(answer.usage.total_tokens)
    payload = wire.body(model=model, content=with_references(answer.content, answer.citations, style),
                        finish_reason=answer.finish_reason, usage=answer.usage, citations=answer.citations)
    return JSONResponse(payload, headers=answer_headers(prepared, answer))
