"""The request's deadline over the work that answers it, enforced from outside that work.

A timeout inside the work (``asyncio.timeout`` around it) cancels the task running it, wherever that
task waits; in a streamed response that task also writes to the client, and a cancellation that lands
there rather than in the generation ends the response without its error event, or leaves it open. It
also waits for whatever the work is awaiting to give way. Here the work runs in a task of its own and
the caller waits for it (or for its next item) no longer than the deadline: at the deadline the work
is cancelled (with it the generation upstream: its connection to the model server closes), given a
short, bounded moment to clean up, and :class:`DependencyTimeoutError` is raised to the caller, who
answers 504 or, mid-stream, an error event and ``[DONE]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from services import telemetry
from services.errors import DependencyTimeoutError

__all__ = ["CLEANUP_S", "Stopped", "deadline_error", "remaining_s", "run_by_deadline", "stream_by_deadline"]

T = TypeVar("T")
CLEANUP_S = 2.0  # how long a cancelled piece of work may take to close its connections, seconds


class Stopped(Exception):
    """The future given as ``also`` to :func:`run_by_deadline` finished before the work did."""


def remaining_s() -> float | None:
    """Seconds left before the current request's deadline (None: it has none)."""
    ctx = telemetry.current()
    return ctx.remaining() if ctx is not None else None


def deadline_error() -> DependencyTimeoutError:
    return DependencyTimeoutError("The request did not finish within its deadline.", dependency="deadline")


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancels ``task`` and waits for it to finish, at most :data:`CLEANUP_S`."""
    if task.done():
        return
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # its outcome is nobody's now
    task.cancel()
    await asyncio.wait({task}, timeout=CLEANUP_S)  # still closing after that: it finishes unseen


async def run_by_deadline(work: Coroutine[Any, Any, T], *, also: asyncio.Future[Any] | None = None) -> T:
    """``work``'s result, or :class:`DependencyTimeoutError` at the deadline (``work`` cancelled).

    ``also``: a future that, when it finishes first, stops the wait too (``work`` cancelled, then
    :class:`Stopped` raised), e.g. a watcher of the client's disconnect."""
    task = asyncio.ensure_future(work)
    waited: set[asyncio.Future[Any]] = {task} if also is None else {task, also}
    try:
        await asyncio.wait(waited, timeout=_timeout(), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this request itself was cancelled: so is its work
        await _cancel(task)
        raise
    if task.done():
        return task.result()
    await _cancel(task)
    if also is not None and also.done():
        raise Stopped()
    raise deadline_error()


async def stream_by_deadline(source: AsyncIterator[T]) -> AsyncIterator[T]:
    """``source``'s items, read in a task of its own (one item ahead at most), until the deadline:
    then that task is cancelled (closing ``source``) and :class:`DependencyTimeoutError` is raised.
    Exceptions of ``source`` are raised here; closing this iterator cancels the reading task."""
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue(maxsize=1)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put((True, item))
        except Exception as exc:  # handed to the reader; cancellation is not
            await queue.put((False, exc))
            return
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()
        await queue.put((False, None))

    task = asyncio.create_task(pump())
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            try:
                done, _ = await asyncio.wait({getter}, timeout=_timeout())
            finally:
                if not getter.done():
                    getter.cancel()
            if not done:
                raise deadline_error()
            is_item, value = getter.result()
            if not is_item:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        await _cancel(task)


def _timeout() -> float | None:
    left = remaining_s()
    return None if left is None else max(left, 0.0)
