"""Guardrails service down: input fails closed by default and open where configured, announced in a
header and counted. The guard is the real HTTP client pointed at a port nothing listens on."""

from __future__ import annotations

import asyncio
import socket

import pytest
from prometheus_client import REGISTRY

from gateway.pipeline import ChatTurn, Pipeline, PipelineOptions
from guardrails.client import HttpGuard
from services.epochs import MemoryEpochStore
from services.errors import DependencyUnavailableError


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _degradations() -> float:
    return REGISTRY.get_sample_value("ragd_degradations_total", {"dependency": "guardrails"}) or 0.0


def _pipeline(guard: HttpGuard, *, fail_open: bool) -> Pipeline:
    # retriever and generator are never reached by the input check
    return Pipeline(retriever=None, generator=None, guard=guard, epochs=MemoryEpochStore(),  # type: ignore[arg-type]
                    options=PipelineOptions(guard_input_fail_open=fail_open))


@pytest.mark.parametrize("fail_open", [False, True])
def test_input_rails_down(fail_open: bool) -> None:
    async def run() -> None:
        guard = HttpGuard(_dead_url(), timeout_s=1.0, retries=0)
        pipeline = _pipeline(guard, fail_open=fail_open)
        turn = ChatTurn(tenant="t", collection="c", model="ragd", question="What is RRF?")
        degraded: list[str] = []
        before = _degradations()
        try:
            if fail_open:
                assert await pipeline._check_input(turn.tenant, turn.question, degraded) is None
            else:
                with pytest.raises(DependencyUnavailableError) as info:
                    await pipeline._check_input(turn.tenant, turn.question, degraded)
                assert info.value.status == 503
                assert info.value.headers["x-ragd-degraded"] == "guardrails"
        finally:
            await guard.aclose()
        assert degraded == ["guardrails"]
        assert _degradations() == before + 1

    asyncio.run(run())
