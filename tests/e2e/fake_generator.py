"""A fake OpenAI-compatible generator (named so: it stands in for a slow CPU model where the test needs
to control how long a generation takes). It streams a fixed cited answer, one piece per ``step_s``, and
counts generations finished and generations whose client went away before the end."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from tests.e2e.conftest import free_port

PIECES = ["The Aurora ", "Lighthouse ", "was built ", "in 1871 ", "on the ", "northern ", "cape [1]", "."]


@dataclass
class FakeGeneratorStats:
    finished: int = 0
    abandoned: int = 0
    started: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


def fake_generator_app(stats: FakeGeneratorStats, step_s: float) -> FastAPI:
    app = FastAPI()

    def event(payload: dict[str, Any]) -> bytes:
        base = {"id": "fake", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
        return f"data: {json.dumps({**base, **payload})}\n\n".encode()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> StreamingResponse:
        body = await request.json()
        pieces = PIECES[: max(1, min(len(PIECES), int(body.get("max_tokens", 256))))]

        async def stream() -> AsyncIterator[bytes]:
            stats.add("started")
            done = False
            try:
                for piece in pieces:
                    await asyncio.sleep(step_s)
                    yield event({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                yield event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                yield event({"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": len(pieces),
                                                      "total_tokens": 50 + len(pieces)}})
                yield b"data: [DONE]\n\n"
                done = True
            finally:
                stats.add("finished" if done else "abandoned")

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


@contextmanager
def running_fake_generator(step_s: float) -> Iterator[tuple[str, FakeGeneratorStats]]:
    """The fake generator on a free loopback port, in a thread: (base URL, its counters)."""
    stats = FakeGeneratorStats()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fake_generator_app(stats, step_s), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1", stats
    finally:
        server.should_exit = True
        thread.join(timeout=10)
