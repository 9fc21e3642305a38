"""gateway.deadline: work runs to the request's deadline, and at the deadline the caller gets the timeout
error without waiting for the work to give way; the work is cancelled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gateway.deadline import Stopped, run_by_deadline, stream_by_deadline
from services import telemetry
from services.errors import DependencyTimeoutError

NEVER_S = 3600.0  # longer than any test may run: the test fails (wait_for) if the caller waits for it
BOUND_S = 30.0


class SlowToStop:
    """A fake piece of work: once cancelled, it takes ``NEVER_S`` to give way."""

    def __init__(self) -> None:
        self.cancelled = False

    async def hold(self) -> None:
        try:
            await asyncio.sleep(NEVER_S)
        except asyncio.CancelledError:
            self.cancelled = True
            await asyncio.sleep(NEVER_S)
            raise

    async def items(self) -> AsyncIterator[str]:
        yield "first"
        await self.hold()
        yield "never"

    async def answer(self) -> str:
        await self.hold()
        return "never"


def _with_deadline(seconds: float) -> None:
    telemetry.bind(telemetry.RequestContext(request_id="t", deadline=time.monotonic() + seconds))


def test_a_stream_past_its_deadline_raises_the_timeout_and_cancels_its_source() -> None:
    work = SlowToStop()

    async def read() -> list[str]:
        _with_deadline(0.5)
        seen: list[str] = []
        with pytest.raises(DependencyTimeoutError):
            async for item in stream_by_deadline(work.items()):
                seen.append(item)
        return seen

    assert asyncio.run(asyncio.wait_for(read(), BOUND_S)) == ["first"]
    assert work.cancelled


def test_work_past_its_deadline_raises_the_timeout_and_is_cancelled() -> None:
    work = SlowToStop()

    async def run() -> None:
        _with_deadline(0.5)
        with pytest.raises(DependencyTimeoutError) as caught:
            await run_by_deadline(work.answer())
        assert caught.value.status == 504

    asyncio.run(asyncio.wait_for(run(), BOUND_S))
    assert work.cancelled


def test_work_within_its_deadline_returns_and_its_errors_are_raised() -> None:
    async def items() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise ValueError("the source failed")

    async def run() -> list[int]:
        _with_deadline(NEVER_S)
        assert await run_by_deadline(asyncio.sleep(0, result="done")) == "done"
        seen: list[int] = []
        with pytest.raises(ValueError, match="the source failed"):
            async for item in stream_by_deadline(items()):
                seen.append(item)
        return seen

    assert asyncio.run(asyncio.wait_for(run(), BOUND_S)) == [1, 2]


def test_a_finished_watcher_stops_the_work() -> None:
    work = SlowToStop()

    async def run() -> None:
        _with_deadline(NEVER_S)
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.2, gone.set_result, None)
        with pytest.raises(Stopped):
            await run_by_deadline(work.answer(), also=gone)

    asyncio.run(asyncio.wait_for(run(), BOUND_S))
    assert work.cancelled
