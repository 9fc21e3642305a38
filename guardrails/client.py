"""``HttpGuard``: the Guard protocol over HTTP, against the guardrails service."""

from __future__ import annotations

from typing import Any

import httpx

from services.contracts import GuardCheckRequest, GuardDecision
from services.httpclient import CircuitBreaker, ServiceClient

__all__ = ["HttpGuard"]


class HttpGuard(ServiceClient):
    """Calls ``POST /v1/guardrails/check``. The policy version is learned by :meth:`warm_up` (or the
    first check) and kept current from every response's decision."""

    def __init__(self, base_url: str, *, timeout_s: float = 5.0, retries: int = 1,
                 breaker: CircuitBreaker | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, dependency="guardrails", timeout_s=timeout_s, retries=retries,
                         breaker=breaker, transport=transport)
        self._policy_version = ""
        self.policy: dict[str, Any] = {}

    @property
    def policy_version(self) -> str:
        """The service's policy version ("" until the service has been reached once)."""
        return self._policy_version

    async def warm_up(self) -> None:
        """Fetch the policy (version, on_block, fail-open defaults)."""
        self.policy = await self.request("GET", "/v1/guardrails/policy")
        self._policy_version = str(self.policy["version"])

    async def check(self, request: GuardCheckRequest) -> GuardDecision:
        # A check has no side effects, so it is safe to retry.
        data = await self.request("POST", "/v1/guardrails/check", idempotent=True,
                                  json=request.model_dump(mode="json"))
        decision = GuardDecision.model_validate(data)
        self._policy_version = decision.policy_version or self._policy_version
        return decision
