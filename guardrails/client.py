"""``HttpGuard``: the Guard protocol over HTTP, against the guardrails service."""

from __future__ import annotations

import contextlib

import httpx

from guardrails.policy import GatewaySide
from services.contracts import GuardCheckRequest, GuardDecision
from services.errors import RagdError
from services.httpclient import CircuitBreaker, ServiceClient

__all__ = ["HttpGuard"]


class HttpGuard(ServiceClient):
    """Calls ``POST /v1/guardrails/check``. The policy (version, on_block, fail-open defaults, streaming
    window) is learned by :meth:`warm_up`, or on the first check when the service was down at start,
    and fetched again whenever a decision carries a different version."""

    def __init__(self, base_url: str, *, timeout_s: float = 5.0, retries: int = 1,
                 breaker: CircuitBreaker | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(base_url, dependency="guardrails", timeout_s=timeout_s, retries=retries,
                         breaker=breaker, transport=transport)
        self._policy_version = ""
        self.gateway_policy: GatewaySide | None = None  # None until the service has been reached once

    @property
    def policy_version(self) -> str:
        """The service's policy version ("" until the service has been reached once)."""
        return self._policy_version

    async def warm_up(self) -> None:
        """Fetch the gateway's side of the policy (version, on_block, fail-open defaults, streaming window)."""
        self.gateway_policy = GatewaySide.model_validate(await self.request("GET", "/v1/guardrails/policy"))
        self._policy_version = self.gateway_policy.version

    async def check(self, request: GuardCheckRequest) -> GuardDecision:
        # A check has no side effects, so it is safe to retry.
        data = await self.request("POST", "/v1/guardrails/check", idempotent=True,
                                  json=request.model_dump(mode="json"))
        decision = GuardDecision.model_validate(data)
        known = self.gateway_policy.version if self.gateway_policy is not None else None
        if decision.policy_version and decision.policy_version != known:
            await self._refresh_policy()  # first contact after a failed warm-up, or the policy changed
        self._policy_version = decision.policy_version or self._policy_version
        return decision

    async def _refresh_policy(self) -> None:
        # The decision itself carries the version; if this fetch fails the knobs refresh on a later call.
        with contextlib.suppress(RagdError):
            await self.warm_up()
