"""Streaming hold-back: generated text is released only after the output rails pass on a window
that contains it, so a secret or a system-prompt leak split across tokens never reaches the client.

The last ``window_chars`` characters are always held; the release point also never cuts through a
word, so a token longer than the window (an API key) stays held until it is complete and checked.
Held text is replaced by the guard's redacted version after every check (placeholders are stable
under re-checking). A block mid-stream stops the generator and ends with a ``content_filter`` delta.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from services.contracts import Delta, GuardCheckRequest, GuardDecision, Usage
from services.protocols import Guard

__all__ = ["guard_stream"]

_MAX_HOLD_FACTOR = 8  # a window this many times over without whitespace is released anyway (still checked)


def _release_point(pending: str, window_chars: int) -> int:
    """Index up to which ``pending`` may be released: at least ``window_chars`` held, cut at whitespace."""
    cut = len(pending) - window_chars
    if cut <= 0:
        return 0
    space = max(pending.rfind(" ", 0, cut + 1), pending.rfind("\n", 0, cut + 1))
    if space > 0:
        return space + 1
    return cut if len(pending) > _MAX_HOLD_FACTOR * max(window_chars, 1) else 0


async def _close(deltas: AsyncIterator[Delta]) -> None:
    aclose = getattr(deltas, "aclose", None)
    if aclose is not None:
        await aclose()


async def guard_stream(
    deltas: AsyncIterator[Delta],
    guard: Guard,
    *,
    window_chars: int = 48,
    check_every_chars: int = 16,
    system_prompt: str | None = None,
    sources: Sequence[str] = (),
    tenant: str = "",
    language: str | None = None,
    strict: bool = False,
) -> AsyncIterator[Delta]:
    """Wrap a generator's deltas; yield only checked text. The last delta carries the finish reason:
    the generator's, or ``"content_filter"`` when the output rails blocked (nothing unsafe released).
    ``strict``: the input was flagged, so the output rails run tightened (policy ``output.strict``).
    """
    pending = ""
    checked_len = 0
    finish_reason: str | None = None
    usage: Usage | None = None

    async def check(text: str) -> GuardDecision:
        return await guard.check(GuardCheckRequest(kind="output", text=text, tenant=tenant, language=language,
                                                   system_prompt=system_prompt, sources=list(sources), strict=strict))

    try:
        async for delta in deltas:
            pending += delta.text
            finish_reason = delta.finish_reason or finish_reason
            usage = delta.usage or usage
            if finish_reason is not None:
                break
            if len(pending) - checked_len < check_every_chars or _release_point(pending, window_chars) == 0:
                continue
            decision = await check(pending)
            if decision.action == "block":
                yield Delta(text="", finish_reason="content_filter", usage=usage)
                return
            pending = decision.text
            cut = _release_point(pending, window_chars)
            released, pending = pending[:cut], pending[cut:]
            checked_len = len(pending)
            if released:
                yield Delta(text=released)
    finally:
        await _close(deltas)
    if pending:
        decision = await check(pending)
        if decision.action == "block":
            yield Delta(text="", finish_reason="content_filter", usage=usage)
            return
        yield Delta(text=decision.text)
    yield Delta(text="", finish_reason=finish_reason or "stop", usage=usage)
