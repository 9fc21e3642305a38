"""Gateway logic that needs no server: request translation, keys, rate limits, citations, SSE shapes."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import pytest
from redis.asyncio import Redis

from gateway.auth import Authenticator, KeyRing, Principal
from gateway.openai_schema import ChatCompletionRequest
from gateway.pipeline import attach_citations
from gateway.ratelimit import MemoryCounters, RateLimiter, RedisCounters
from gateway.settings import GatewaySettings
from gateway.sse import ChunkWriter
from gateway.turns import to_turn
from services.contracts import ScoredChunk, Usage
from services.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

SETTINGS = GatewaySettings(max_tokens_limit=512, max_messages=4)


def _turn(body: dict[str, object], cache_control: str = "") -> object:
    return to_turn(ChatCompletionRequest.model_validate(body), tenant="t1", settings=SETTINGS,
                   cache_control=cache_control)


def test_model_name_selects_collection() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    assert _turn({"model": "ragd", "messages": msgs}).collection == "default"  # type: ignore[attr-defined]
    assert _turn({"model": "ragd:docs", "messages": msgs}).collection == "docs"  # type: ignore[attr-defined]
    assert _turn({"model": "ragd", "ragd": {"collection": "x"}, "messages": msgs}).collection == "x"  # type: ignore[attr-defined]
    with pytest.raises(NotFoundError):
        _turn({"model": "gpt-4", "messages": msgs})


def test_messages_become_history_instructions_and_question() -> None:
    turn = _turn({"model": "ragd", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "What is RRF?"}]},
        {"role": "assistant", "content": "A fusion method [1]."},
        {"role": "user", "content": "and its k?"}], "max_completion_tokens": 20, "stop": "END",
        "unknown_field": 1})
    assert turn.question == "and its k?"  # type: ignore[attr-defined]
    assert [m.role for m in turn.history] == ["user", "assistant"]  # type: ignore[attr-defined]
    assert turn.instructions == "be brief"  # type: ignore[attr-defined]
    assert turn.params.max_tokens == 20 and turn.params.stop == ("END",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "ragd", "messages": [{"role": "user", "content": "x"}] * 5}, "messages"),
    ({"model": "ragd", "messages": [{"role": "user", "content": "x"}], "max_tokens": 513}, "max_tokens"),
    ({"model": "ragd", "messages": [{"role": "user", "content": "   "}]}, "messages"),
    ({"model": "ragd", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages.0.content"),
])
def test_limits_and_bad_content_are_invalid_requests(body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        _turn(body)
    assert info.value.param == param


def test_cache_control_directives() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    turn = _turn({"model": "ragd", "messages": msgs}, "no-cache, no-store")
    assert not turn.cache_read and not turn.cache_write  # type: ignore[attr-defined]
    turn = _turn({"model": "ragd", "messages": msgs}, "no-store")
    assert turn.cache_read and not turn.cache_write  # type: ignore[attr-defined]


def test_configured_keys_are_hashed_and_roles_checked() -> None:
    ring = KeyRing.load(file=None, inline="sk-aaaaaaaaaaaaaaaaaaaa:acme:admin,sk-bbbbbbbbbbbbbbbbbbbb:beta")
    auth = Authenticator(ring, None, mode="keys")

    async def run() -> None:
        admin = await auth.authenticate("Bearer sk-aaaaaaaaaaaaaaaaaaaa")
        assert (admin.tenant, admin.role) == ("acme", "admin")
        admin.require("admin")
        user = await auth.authenticate("bearer sk-bbbbbbbbbbbbbbbbbbbb")
        with pytest.raises(PermissionDeniedError):
            user.require("admin")
        for bad in (None, "", "Basic abc", "Bearer ", "Bearer wrong"):
            with pytest.raises(AuthenticationError):
                await auth.authenticate(bad)

    asyncio.run(run())
    assert "sk-aaaa" not in repr(ring.__dict__)


def test_open_mode_is_one_default_tenant_and_no_admin() -> None:
    auth = Authenticator(KeyRing.load(file=None, inline=""), None, mode="open", default_tenant="default")
    principal = asyncio.run(auth.authenticate(None))
    assert auth.is_open and principal.tenant == "default"
    assert asyncio.run(auth.authenticate("Bearer sk-anything-at-all-000")) == principal
    with pytest.raises(PermissionDeniedError, match="ragd keys create") as info:
        principal.require("admin")
    assert info.value.code == "open_mode"


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_rate_limits_requests_and_tokens(backend: str) -> None:
    async def run() -> None:
        redis = Redis.from_url("redis://127.0.0.1:6379/0") if backend == "redis" else None
        counters = RedisCounters(redis, prefix=f"ragd:test:{uuid.uuid4().hex}:") if redis else MemoryCounters()
        limiter = RateLimiter(counters, rpm=3, tpm=100)
        who = Principal(tenant="t", role="user", key_id=uuid.uuid4().hex[:8])
        for _ in range(3):
            await limiter.admit(who)
        with pytest.raises(RateLimitError) as info:
            await limiter.admit(who)
        assert 1 <= int(info.value.headers["retry-after"]) <= 60
        other = Principal(tenant="t", role="user", key_id=uuid.uuid4().hex[:8])
        await limiter.admit(other)
        await limiter.spend_tokens(other, 150)
        with pytest.raises(RateLimitError, match="Token"):
            await limiter.admit(other)
        if redis is not None:
            await redis.aclose()

    asyncio.run(run())


def _chunk(n: int) -> ScoredChunk:
    return ScoredChunk(chunk_id=f"c{n}", doc_id=f"d{n}", title=f"Doc {n}", text="x" * 300, score=1.0 / n)


def test_citations_follow_the_answer_or_list_all_sources() -> None:
    chunks = [_chunk(1), _chunk(2), _chunk(3)]
    text = "Fact one [2]. Fact two [2][1]. Bogus [9]."
    footer, cited = attach_citations(text, chunks)
    assert footer == text
    assert [c.index for c in cited] == [2, 1]
    assert cited[0].document_id == "d2" and cited[0].snippet.endswith("…")
    footer, cited = attach_citations("No markers here.", chunks)
    assert footer.startswith("\n\nSources: [1] Doc 1; [2] Doc 2; [3] Doc 3")
    assert [c.index for c in cited] == [1, 2, 3]
    assert attach_citations("I don't know.", []) == ("I don't know.", [])


def test_chunk_writer_shapes() -> None:
    writer = ChunkWriter("ragd")
    events = [writer.start(), writer.content("hi"), writer.finish("stop", []), writer.usage(Usage(prompt_tokens=3))]
    payloads = [json.loads(e.decode().removeprefix("data: ")) for e in events]
    assert {p["id"] for p in payloads} == {writer.id}
    assert payloads[2]["choices"][0]["finish_reason"] == "stop" and payloads[2]["citations"] == []
    assert payloads[3]["choices"] == [] and payloads[3]["usage"]["total_tokens"] == 3
    assert writer.done() == b"data: [DONE]\n\n"


def test_the_gateway_sets_its_gil_switch_interval_while_it_runs() -> None:
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager
    from types import SimpleNamespace
    from typing import Any

    from fastapi.testclient import TestClient

    from gateway.app import create_app

    @asynccontextmanager
    async def components(_: GatewaySettings) -> AsyncIterator[Any]:
        knobs = SimpleNamespace(input_fail_open=False, output_fail_open=False, window_chars=48, on_block_error=False)
        yield SimpleNamespace(redis=None, retriever=None, generator=None, guard=None, epochs=None, cache=None,
                              scope_factory=None, knobs=knobs, abstainer=None, packer=None)

    before = sys.getswitchinterval()
    settings = GatewaySettings(gil_switch_interval_ms=2.5, api_keys="sk-test-key-0123456789:acme:user")
    try:
        with TestClient(create_app(settings, components_factory=components)):
            assert sys.getswitchinterval() == pytest.approx(0.0025)
    finally:
        sys.setswitchinterval(before)
