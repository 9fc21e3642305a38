"""The request deadline bounds a whole answer, streamed or not, whatever the generator does when it is
cancelled: the gateway (in process, behind uvicorn on a loopback port, real retriever, guardrails and
cache) answers a stream cut at its deadline with an OpenAI error event and ``data: [DONE]``, a
non-streaming request with 504, and the generation upstream is cancelled.

Two generators stand in for a slow CPU model, both fakes (named so): one over HTTP, served like
llama.cpp/vLLM and read through ragd's OpenAI client (the ``llm`` backend's path), and one in
process that, once cancelled, takes a minute to give way (a model client whose cancellation waits on
its server). The deadline must not wait for it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import uvicorn

from gateway.admission import AdmissionSettings
from gateway.app import create_app
from gateway.components import Components, build_components
from gateway.settings import GatewaySettings
from services.contracts import AnswerContext, ChatMessage, Completion, Delta, GenerationParams, Usage
from tests.e2e.conftest import FIXTURE_CORPUS, free_port
from tests.e2e.fake_generator import FakeGeneratorStats, running_fake_generator

pytestmark = pytest.mark.e2e

DEADLINE_S = 8.0
MARGIN_S = 20.0  # generous: a loaded machine; a generation that ran to its end would take 24 s more
PIECES = ["The Aurora ", "Lighthouse ", "was built ", "in 1871 ", "on the ", "northern ", "cape [1]", "."]
QUESTION = "When was the Aurora Lighthouse built?"


class SlowToStopFakeGenerator:
    """A fake generator: one piece every ``step_s``; cancelled, it takes ``stop_s`` to give way."""

    def __init__(self, step_s: float, stop_s: float) -> None:
        self.step_s = step_s
        self.stop_s = stop_s
        self.started = 0
        self.cancelled = 0

    async def complete(self, messages: Sequence[ChatMessage], params: GenerationParams,
                       context: AnswerContext | None = None) -> Completion:
        text = [d.text async for d in self.stream(messages, params, context)]
        return Completion(text="".join(text), finish_reason="stop", usage=Usage())

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams,
                     context: AnswerContext | None = None) -> AsyncIterator[Delta]:
        self.started += 1
        try:
            for piece in PIECES:
                await asyncio.sleep(self.step_s)
                yield Delta(text=piece)
        except asyncio.CancelledError:
            self.cancelled += 1
            await asyncio.sleep(self.stop_s)
            raise
        yield Delta(finish_reason="stop", usage=Usage(prompt_tokens=50, completion_tokens=len(PIECES)))


class InProcessServer:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url


@contextmanager
def _serve(settings: GatewaySettings, generator: object | None) -> Iterator[InProcessServer]:
    @asynccontextmanager
    async def components(s: GatewaySettings) -> AsyncIterator[Components]:
        async with build_components(s) as built:
            yield built if generator is None else replace(built, generator=generator, packer=None)

    port = free_port()
    # admission off: each request here is meant to reach the generator
    app = create_app(settings, components_factory=components, admission=AdmissionSettings(enabled=False))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    ready_by = time.monotonic() + 300
    while time.monotonic() < ready_by and thread.is_alive():
        try:
            if httpx.get(base + "/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    try:
        yield InProcessServer(base)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _settings(tmp: Path, **extra: object) -> GatewaySettings:
    return GatewaySettings(data_dir=tmp, demo_corpus=FIXTURE_CORPUS, request_timeout_s=DEADLINE_S,
                           stream_holdback_chars=16, **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def slow_to_stop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessServer, SlowToStopFakeGenerator]]:
    fake = SlowToStopFakeGenerator(step_s=3.0, stop_s=60.0)
    with _serve(_settings(tmp_path_factory.mktemp("ragd-deadline")), fake) as server:
        yield server, fake


@pytest.fixture(scope="module")
def over_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessServer, FakeGeneratorStats]]:
    with (running_fake_generator(3.0) as (url, stats),
          _serve(_settings(tmp_path_factory.mktemp("ragd-deadline-llm"), generator_url=url), None) as server):
        yield server, stats


def _body(stream: bool) -> dict[str, object]:
    return {"model": "ragd", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": QUESTION}]}


def _stream_events(base_url: str) -> tuple[list[str], float]:
    """The stream's ``data:`` payloads and the seconds until the server ended it."""
    started = time.monotonic()
    with httpx.stream("POST", base_url + "/v1/chat/completions", json=_body(True), timeout=180,
                      headers={"cache-control": "no-cache"}) as response:
        assert response.status_code == 200
        events = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    return events, time.monotonic() - started


def _assert_ended_by_the_deadline(events: list[str], seconds: float) -> None:
    assert events[-1] == "[DONE]", events[-3:]
    error = json.loads(events[-2])["error"]
    assert error["code"] == "timeout" and "deadline" in error["message"]
    assert not any('"finish_reason": "stop"' in e for e in events)  # cut, not answered in full
    assert seconds < DEADLINE_S + MARGIN_S, seconds


def test_a_stream_ends_at_its_deadline_though_the_generator_is_slow_to_stop(
        slow_to_stop: tuple[InProcessServer, SlowToStopFakeGenerator]) -> None:
    server, fake = slow_to_stop
    before = fake.cancelled
    events, seconds = _stream_events(server.base_url)
    _assert_ended_by_the_deadline(events, seconds)
    assert fake.cancelled == before + 1  # the generation was cancelled, not left running


def test_a_non_streaming_answer_is_504_at_its_deadline_though_the_generator_is_slow_to_stop(
        slow_to_stop: tuple[InProcessServer, SlowToStopFakeGenerator]) -> None:
    server, fake = slow_to_stop
    before = fake.cancelled
    started = time.monotonic()
    response = httpx.post(server.base_url + "/v1/chat/completions", json=_body(False), timeout=180,
                          headers={"cache-control": "no-cache"})
    seconds = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "timeout"
    assert seconds < DEADLINE_S + MARGIN_S, seconds
    assert fake.cancelled == before + 1


def test_a_stream_from_a_model_server_ends_at_its_deadline_and_the_generation_is_cancelled(
        over_http: tuple[InProcessServer, FakeGeneratorStats]) -> None:
    server, stats = over_http
    abandoned = stats.abandoned
    events, seconds = _stream_events(server.base_url)
    _assert_ended_by_the_deadline(events, seconds)
    deadline = time.monotonic() + 15
    while stats.abandoned == abandoned and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stats.abandoned == abandoned + 1  # the model server saw its client leave before the end
    assert stats.finished == 0
