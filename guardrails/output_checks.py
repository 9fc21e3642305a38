"""Output-side scores: system-prompt leak and grounding against the cited sources (instruction-like
answers are pattern rules of category ``instruction`` in ``rules.yaml``)."""

from __future__ import annotations

import re

__all__ = ["grounding_score", "leak_score"]

_WORD = re.compile(r"\w+", re.UNICODE)
_LEAK_RUN_WORDS = 12  # a run this long of consecutive system-prompt words is a full leak (score 1.0)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def leak_score(answer: str, system_prompt: str) -> float:
    """Longest run of consecutive system-prompt words found in the answer, scaled to 0..1.

    1.0 means a run of 12 words (or the whole prompt when it is shorter); 0.5 is half that. A run,
    not a bag of words, so answers that merely share vocabulary with the prompt score low.
    """
    prompt, said = _words(system_prompt), _words(answer)
    if not prompt or not said:
        return 0.0
    full = min(_LEAK_RUN_WORDS, len(prompt))
    positions: dict[str, list[int]] = {}
    for i, w in enumerate(prompt):
        positions.setdefault(w, []).append(i)
    best = 0
    previous: dict[int, int] = {}
    for w in said:
        current = {i: previous.get(i - 1, 0) + 1 for i in positions.get(w, ())}
        if current:
            best = max(best, *current.values())
        previous = current
    return min(1.0, best / full)


def grounding_score(answer: str, sources: list[str]) -> float:
    """Share of the answer's content words (4+ characters, or any Hangul word) found in the sources."""
    words = {w for w in _words(answer) if len(w) >= 4 or any("\uac00" <= c <= "\ud7a3" for c in w)}
    if not words:
        return 1.0
    text = " ".join(sources).lower()
    return sum(1 for w in words if w in text) / len(words)
