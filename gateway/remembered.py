"""Input-rail decisions remembered per (policy, tenant, text): a repeated question passes the rails
without paying for them twice, and the fast path can tell cheaply whether a question would pass."""

from __future__ import annotations

from collections import OrderedDict

from services import telemetry
from services.contracts import GuardCheckRequest, GuardDecision
from services.protocols import Guard

__all__ = ["RememberingGuard"]


class RememberingGuard:
    """A :class:`~services.protocols.Guard` that remembers its input decisions (rails are
    deterministic per policy and text), the ``size`` most recent ones. A remembered decision counts
    in ``ragd_guardrail_decisions_total`` like a fresh one. Output checks pass straight through."""

    def __init__(self, guard: Guard, size: int = 4096) -> None:
        self.inner = guard
        self._size = size
        self._decisions: OrderedDict[tuple[str, str, str], GuardDecision] = OrderedDict()

    @property
    def policy_version(self) -> str:
        return self.inner.policy_version

    async def ready(self) -> dict[str, bool]:
        return await self.inner.ready()

    def known(self, tenant: str, text: str) -> GuardDecision | None:
        """The remembered input decision on ``text``, if the rails ran on it before (counts nothing)."""
        key = (self.inner.policy_version, tenant, text)
        known = self._decisions.get(key) if key[0] else None
        if known is not None:
            self._decisions.move_to_end(key)
        return known

    async def check(self, request: GuardCheckRequest) -> GuardDecision:
        if request.kind != "input":
            return await self.inner.check(request)
        known = self.known(request.tenant, request.text)
        if known is not None:
            telemetry.count_guard_decision("input", known)
            return known
        policy = self.inner.policy_version  # read before the check: a policy that changes meanwhile is not mixed in
        decision = await self.inner.check(request)
        if policy:
            self._decisions[(policy, request.tenant, request.text)] = decision
            if len(self._decisions) > self._size:
                self._decisions.popitem(last=False)
        return decision
