"""RememberingGuard: input decisions are remembered per (policy, tenant, text) and count like fresh ones."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from gateway.remembered import RememberingGuard
from services.contracts import GuardCheckRequest, GuardDecision


class CountingFakeGuard:
    """A fake guard (the real ones are covered by the guard contract tests): passes everything, counts calls."""

    def __init__(self, version: str = "p1") -> None:
        self.version = version
        self.calls: list[tuple[str, str]] = []

    @property
    def policy_version(self) -> str:
        return self.version

    async def ready(self) -> dict[str, bool]:
        return {"fake": True}

    async def check(self, request: GuardCheckRequest) -> GuardDecision:
        self.calls.append((request.kind, request.text))
        return GuardDecision(action="pass", text=request.text.upper(), policy_version=self.version)


def _passes() -> float:
    return REGISTRY.get_sample_value("ragd_guardrail_decisions_total",
                                     {"kind": "input", "rail": "none", "action": "pass"}) or 0.0


def _input(text: str, tenant: str = "t1") -> GuardCheckRequest:
    return GuardCheckRequest(kind="input", text=text, tenant=tenant)


def test_a_repeated_input_is_answered_from_memory_and_counted() -> None:
    inner = CountingFakeGuard()
    guard = RememberingGuard(inner, size=2)

    async def run() -> None:
        assert guard.known("t1", "hello") is None
        first = await guard.check(_input("hello"))
        before = _passes()
        again = await guard.check(_input("hello"))
        assert again == first and inner.calls == [("input", "hello")]
        assert _passes() == before + 1  # a remembered decision counts like a fresh one
        assert guard.known("t1", "hello") == first and guard.known("t2", "hello") is None
        await guard.check(_input("hello", tenant="t2"))  # another tenant: its own decision
        await guard.check(GuardCheckRequest(kind="output", text="hello"))
        await guard.check(GuardCheckRequest(kind="output", text="hello"))  # outputs are never remembered
        assert inner.calls.count(("output", "hello")) == 2
        await guard.check(_input("third"))  # size 2: the oldest ("hello" of t1) is forgotten
        assert guard.known("t1", "hello") is None and guard.known("t1", "third") is not None
        inner.version = "p2"  # a new policy: nothing remembered under the old one applies
        assert guard.known("t1", "third") is None
        assert await guard.ready() == {"fake": True} and guard.policy_version == "p2"

    asyncio.run(run())


def test_nothing_is_remembered_while_the_policy_is_unknown() -> None:
    inner = CountingFakeGuard(version="")
    guard = RememberingGuard(inner)

    async def run() -> None:
        await guard.check(_input("hello"))
        await guard.check(_input("hello"))

    asyncio.run(run())
    assert inner.calls == [("input", "hello"), ("input", "hello")]
