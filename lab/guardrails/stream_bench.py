"""What the streaming hold-back costs: time to first released text, per window size and token rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from guardrails.streaming import guard_stream
from services.contracts import Delta
from services.protocols import Guard

__all__ = ["TtftResult", "measure_ttft"]

_ANSWER = ("According to the refund policy in the documents, annual plans can be refunded in full within "
           "thirty days of purchase. After that, the unused months are refunded pro rata, minus a small "
           "processing fee. To request a refund, open the billing page, choose the order and press the "
           "refund button; the money reaches your card within five to seven business days. ") * 3


@dataclass(frozen=True)
class TtftResult:
    window_chars: int
    tokens_per_second: float
    ttft_ms: float         # first released text, from the start of generation
    added_ms: float        # minus the unguarded first token
    checks_ms_total: float  # time spent in output checks over the whole answer


async def _generator(tokens: Sequence[str], interval_s: float) -> AsyncIterator[Delta]:
    for token in tokens:
        await asyncio.sleep(interval_s)
        yield Delta(text=token)
    yield Delta(text="", finish_reason="stop")


class _TimedGuard:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.spent = 0.0

    @property
    def policy_version(self) -> str:
        return self.guard.policy_version

    async def ready(self) -> dict[str, bool]:
        return await self.guard.ready()

    async def check(self, request):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return await self.guard.check(request)
        finally:
            self.spent += time.perf_counter() - start


async def _one(guard: Guard, window: int, rate: float) -> TtftResult:
    tokens = [_ANSWER[i:i + 4] for i in range(0, len(_ANSWER), 4)]
    interval = 1.0 / rate
    timed = _TimedGuard(guard)
    start = time.perf_counter()
    first = None
    async for delta in guard_stream(_generator(tokens, interval), timed, window_chars=window):
        if delta.text and first is None:
            first = time.perf_counter() - start
    ttft = (first or 0.0) * 1000
    return TtftResult(window, rate, round(ttft, 1), round(ttft - interval * 1000, 1), round(timed.spent * 1000, 1))


def measure_ttft(guard: Guard, windows: Sequence[int], rates: Sequence[float]) -> list[TtftResult]:
    """Stream a fixed answer (4-character tokens at ``rate`` tokens/s) through each window size."""
    return [asyncio.run(_one(guard, w, r)) for r in rates for w in windows]
