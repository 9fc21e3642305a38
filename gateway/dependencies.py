"""The gateway's dependency view (``/ready?deep=1``): each piece it calls and whether that piece answers now.

The gateway's own ``/ready`` says only that the gateway has started (its components are built and its cache
embedder is loaded), so a retriever or Redis outage never takes healthy gateways out of rotation or restarts
them: requests then fail fast with the right OpenAI error, or degrade as the policy says. This view is for
operators and alerting: retriever, guardrails, generator and Redis are probed at once, each within
``PROBE_TIMEOUT_S``; Chroma is seen through the retriever's own readiness (the gateway never calls it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx

from gateway.components import Components
from gateway.settings import GatewaySettings

__all__ = ["PROBE_TIMEOUT_S", "DependencyView", "dependency_view"]

PROBE_TIMEOUT_S = 2.0
State = Literal["up", "down", "unknown", "unused"]
Report = dict[str, Any]
Probe = Callable[[], Awaitable[Report]]


def _report(state: State, mode: str, detail: str = "", **extra: Any) -> Report:
    return {"state": state, "mode": mode, "detail": detail, **extra}


async def _http_ready(http: httpx.AsyncClient, url: str) -> Report:
    """GET ``url``; up on a 200, with the JSON body's ``checks`` kept for what lies behind the piece."""
    try:
        response = await http.get(url)
    except httpx.HTTPError as exc:
        return _report("down", "http", type(exc).__name__, url=url)
    checks: dict[str, Any] = {}
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        checks = body.get("checks", {}) if isinstance(body, dict) else {}
    state: State = "up" if response.status_code == 200 else "down"
    return _report(state, "http", f"HTTP {response.status_code}", url=url, checks=checks)


class DependencyView:
    """The probes of one gateway's components, chosen once from how each piece is reached."""

    def __init__(self, components: Components, settings: GatewaySettings) -> None:
        self._components = components
        self._settings = settings

    async def _retriever(self, http: httpx.AsyncClient) -> Report:
        if self._settings.retriever_url:
            return await _http_ready(http, self._settings.retriever_url.rstrip("/") + "/ready")
        checks = await self._components.retriever.ready()
        return _report("up" if all(checks.values()) else "down", "in-process", checks=checks)

    async def _guardrails(self, http: httpx.AsyncClient) -> Report:
        if self._settings.guardrails_url:
            return await _http_ready(http, self._settings.guardrails_url.rstrip("/") + "/ready")
        checks = await self._components.guard.ready()
        return _report("up" if all(checks.values()) else "down", "in-process", checks=checks)

    async def _generator(self, http: httpx.AsyncClient) -> Report:
        base = getattr(self._components.generator, "base_url", None)
        if base is None:  # answers in this process (extractive, or routed by language): its own checks
            checks = await self._components.generator.ready()
            return _report("up" if all(checks.values()) else "down", "in-process", checks=checks)
        report = await _http_ready(http, f"{base}/models")  # OpenAI's model list: vLLM and llama.cpp serve it
        report.pop("checks", None)
        return report

    async def _redis(self) -> Report:
        redis = self._components.redis
        if redis is None:
            return _report("unused", "in-process", "no Redis URL: cache, epochs and limits are in process")
        try:
            await redis.ping()
        except Exception as exc:  # any client error means the same to an operator: Redis does not answer
            return _report("down", "redis", type(exc).__name__)
        return _report("up", "redis")

    @staticmethod
    def _chroma(retriever: Report) -> Report:
        mode = "http" if retriever["mode"] == "http" else "in-process"
        store = retriever.get("checks", {}).get("store")
        if store is None:
            return _report("unknown", mode, "seen through the retriever, which did not say")
        return _report("up" if store else "down", mode, "as the retriever sees it")

    async def probe(self) -> dict[str, Report]:
        """Every dependency's state; a probe that takes longer than ``PROBE_TIMEOUT_S`` counts as down."""
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as http:
            probes: dict[str, Probe] = {
                "retriever": lambda: self._retriever(http),
                "guardrails": lambda: self._guardrails(http),
                "generator": lambda: self._generator(http),
                "redis": self._redis,
            }
            results = await asyncio.gather(*(_timed(probe) for probe in probes.values()))
        reports = dict(zip(probes, results, strict=True))
        reports["chroma"] = self._chroma(reports["retriever"])
        return reports


async def _timed(probe: Probe) -> Report:
    start = time.perf_counter()
    try:
        report = await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
    except TimeoutError:
        report = _report("down", "unknown", f"no answer within {PROBE_TIMEOUT_S:g} s")
    except Exception as exc:  # a probe must report, never raise
        report = _report("down", "unknown", type(exc).__name__)
    report["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
    return report


async def dependency_view(components: Components | None, settings: GatewaySettings) -> dict[str, Report]:
    """The view for ``/ready?deep=1``; before the gateway has started, every dependency is unknown."""
    if components is None:
        return {name: _report("unknown", "unknown", "the gateway has not started")
                for name in ("retriever", "guardrails", "generator", "redis", "chroma")}
    return await DependencyView(components, settings).probe()
