"""The exact-hit fast path: a repeated single-turn question is answered beneath FastAPI's routing with
everything a hit through the route gets (auth, rate limit, counted input decision, same body and
headers); every other request reaches the route with its body intact. Real pieces throughout: the
packaged guardrails, the answer cache, the key ring and the rate limiter; the route itself is
replaced by a recorder of what reaches it."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml
from starlette.types import Message, Receive, Scope, Send

from cache import AnswerCache, CachedAnswer, CacheScope, CacheSettings
from gateway.auth import Authenticator, KeyRing
from gateway.components import cache_scope_factory
from gateway.fastpath import CHAT_PATH, ExactHitFastPath
from gateway.pipeline import ChatTurn, Pipeline
from gateway.ratelimit import MemoryCounters, RateLimiter
from gateway.settings import GatewaySettings
from guardrails.engine import LocalGuard
from guardrails.policy import parse_policy
from guardrails.settings import GuardrailsSettings
from services.contracts import GenerationParams
from services.epochs import MemoryEpochStore

KEY = "sk-fastpath-0123456789abcdef"
QUESTION = "When does the Zentra harbor open?"
ANSWER = "The harbor opens at six [1]."


class RouteRecorder:
    """Stands in for the FastAPI route: records the bodies that reach it and answers 299."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"route"})


async def _setup(rpm: int = 0) -> tuple[ExactHitFastPath, RouteRecorder]:
    settings = GatewaySettings()
    policy = yaml.safe_load(GuardrailsSettings().policy_path.read_text(encoding="utf-8"))
    policy["input"]["topics"]["enabled"] = False  # no embedder needed for these questions
    guard = LocalGuard(parse_policy(policy), GuardrailsSettings())
    await guard.warm_up()
    cache = AnswerCache.create(CacheSettings(semantic=False), None)
    pipeline = Pipeline(retriever=None, generator=None, guard=guard, epochs=MemoryEpochStore(),  # type: ignore[arg-type]
                        cache=cache, scope_factory=cache_scope_factory(CacheScope))
    turn = ChatTurn(tenant="t1", collection=settings.default_collection, model="ragd", question=QUESTION,
                    params=GenerationParams(max_tokens=settings.default_max_tokens))
    decision = await pipeline._check_input(turn.tenant, turn.question, [])  # the rails ran on this question once
    assert decision is not None and decision.action == "pass"
    epoch = await pipeline.epochs.get("t1", settings.default_collection)
    scope = cache_scope_factory(CacheScope)(tenant="t1", collection=settings.default_collection, epoch=epoch,
                                            policy_version=guard.policy_version, model="ragd",
                                            params=turn.params, context="")
    citation = {"index": 1, "document_id": "harbor", "title": "Harbor", "chunk_id": "harbor#0", "score": 1.0,
                "snippet": "The harbor opens at six."}
    assert await cache.store(scope, QUESTION, CachedAnswer(content=ANSWER, citations=[citation],
                                                           prompt_tokens=40, completion_tokens=8))
    state = SimpleNamespace(settings=settings, pipeline=pipeline, keys=Authenticator(
        KeyRing.load(file=None, inline=f"{KEY}:t1:user"), None, mode="keys"),
        limiter=RateLimiter(MemoryCounters(), rpm=rpm, tpm=0))
    route = RouteRecorder()
    return ExactHitFastPath(route, state=lambda: state), route


def _body(question: str = QUESTION, **extra: Any) -> dict[str, Any]:
    return {"model": "ragd", "messages": [{"role": "user", "content": question}], **extra}


async def _post(app: ExactHitFastPath, body: Any, key: str = KEY, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        return await client.post(CHAT_PATH, content=json.dumps(body),
                                 headers={"authorization": f"Bearer {key}", **headers})


def test_an_exact_hit_is_answered_without_the_route() -> None:
    async def run() -> None:
        app, route = await _setup()
        response = await _post(app, _body())
        assert response.status_code == 200 and route.bodies == []
        assert response.headers["x-ragd-cache"] == "exact"
        payload = response.json()
        assert payload["object"] == "chat.completion" and payload["id"].startswith("chatcmpl-")
        assert payload["choices"][0]["message"]["content"] == ANSWER
        assert payload["choices"][0]["finish_reason"] == "stop"
        assert payload["citations"][0]["document_id"] == "harbor"
        assert payload["usage"] == {"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48}

    asyncio.run(run())


@pytest.mark.parametrize(("body", "key", "headers"), [
    (_body(), "sk-wrong-key-0000000000", {}),                       # the route answers 401
    (_body(stream=True), KEY, {}),                                  # streamed replays go the normal way
    (_body("When does the Zentra harbor close?"), KEY, {}),         # not cached
    (_body(), KEY, {"cache-control": "no-cache"}),                  # must not read the cache
    (_body(temperature=1.5), KEY, {}),                              # other parameters: another scope
    ({"model": "ragd", "messages": [{"role": "user", "content": "Where is it?"},
                                    {"role": "assistant", "content": "Zentra."},
                                    {"role": "user", "content": QUESTION}]}, KEY, {}),  # a follow-up
    ({"model": "ragd", "messages": []}, KEY, {}),                   # invalid: the route says why
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": QUESTION}]}, KEY, {}),  # unknown model
])
def test_everything_else_reaches_the_route_with_its_body(body: Any, key: str, headers: dict[str, str]) -> None:
    async def run() -> None:
        app, route = await _setup()
        response = await _post(app, body, key, **headers)
        assert response.status_code == 299
        assert route.bodies == [json.dumps(body).encode()]

    asyncio.run(run())


def test_a_body_in_several_messages_is_replayed_whole() -> None:
    async def run() -> None:
        app, route = await _setup()
        raw = json.dumps(_body("Is the Zentra harbor open on Sundays?")).encode()
        parts = [raw[:10], raw[10:25], raw[25:]]
        messages: list[Message] = [{"type": "http.request", "body": p, "more_body": i < 2}
                                   for i, p in enumerate(parts)]

        async def receive() -> Message:
            return messages.pop(0)

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": CHAT_PATH,
                 "headers": [(b"authorization", f"Bearer {KEY}".encode())]}
        await app(scope, receive, send)
        assert route.bodies == [raw] and sent[0]["status"] == 299

    asyncio.run(run())


def test_hits_count_against_the_rate_limit() -> None:
    async def run() -> None:
        app, route = await _setup(rpm=2)
        assert [(await _post(app, _body())).status_code for _ in range(2)] == [200, 200]
        refused = await _post(app, _body())
        assert refused.status_code == 429 and route.bodies == []
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(refused.headers["retry-after"]) <= 60

    asyncio.run(run())


def test_the_early_embedding_is_used_only_for_an_unchanged_question() -> None:
    """The semantic lookup's embedding starts beside the input rails; a question the rails redacted is
    embedded afresh from its redacted text, and its raw text is never memoised."""
    async def run() -> None:
        app, _ = await _setup()
        pipeline = app.state().pipeline
        # semantic on (the packaged e5 embedder); no retriever here, so no evidence check: see test_evidence
        cache = AnswerCache.create(CacheSettings(evidence=False), None)
        pipeline.cache = cache
        settings = GatewaySettings()
        params = GenerationParams(max_tokens=settings.default_max_tokens)
        epoch = await pipeline.epochs.get("t1", "default")
        scope = cache_scope_factory(CacheScope)(tenant="t1", collection="default", epoch=epoch,
                                                policy_version=pipeline.guard.policy_version, model="ragd",
                                                params=params, context="")
        raw = "My email is jane.roe@example.com. How do I reset my password?"
        redacted = (await pipeline._check_input("t1", raw, [])).text
        assert "jane.roe" not in redacted
        for question in ("How do I reset my password?", redacted):
            assert await cache.store(scope, question, CachedAnswer(content="From the settings page [1]."))
        paraphrase = ChatTurn(tenant="t1", collection="default", model="ragd", params=params,
                              question="How can I reset my password?")
        assert (await pipeline.prepare(paraphrase)).cache == "semantic"
        assert paraphrase.question in cache._vectors  # the early vector was used (and memoised)
        pii = ChatTurn(tenant="t1", collection="default", model="ragd", params=params, question=raw)
        assert (await pipeline.prepare(pii)).cache == "exact"  # found under its redacted text
        assert raw not in cache._vectors
        await asyncio.sleep(0.2)  # the cancelled early embedding's thread finishes unseen
        assert raw not in cache._vectors

    asyncio.run(run())
