"""Prompts with numbered sources, and the citations an answer makes to them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from services.contracts import ChatMessage, ScoredChunk

__all__ = ["DEFAULT_SYSTEM_PROMPT", "build_messages", "cited_numbers", "rewrite_messages"]

DEFAULT_SYSTEM_PROMPT = (
    "You are ragd, a careful assistant that answers only from the numbered sources given with the question. "
    "Cite every fact with the number of its source in square brackets, like [1] or [2]. "
    "If the sources do not contain the answer, say that you do not know. "
    "Answer in the language of the question, briefly."
)

_CITATION = re.compile(r"\[(\d{1,2})\]")


def _source_block(chunks: Sequence[ScoredChunk], max_chars: int) -> str:
    lines = []
    for number, chunk in enumerate(chunks, start=1):
        text = chunk.text if len(chunk.text) <= max_chars else chunk.text[:max_chars] + "…"
        title = f"{chunk.title}: " if chunk.title else ""
        lines.append(f"[{number}] {title}{text}")
    return "\n\n".join(lines)


def build_messages(
    question: str,
    chunks: Sequence[ScoredChunk],
    *,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    history: Sequence[ChatMessage] = (),
    max_source_chars: int = 1200,
) -> list[ChatMessage]:
    """System prompt, earlier turns, then the question with its numbered sources."""
    sources = _source_block(chunks, max_source_chars) if chunks else "(no sources were found)"
    user = f"Sources:\n{sources}\n\nQuestion: {question}\nAnswer with citations like [1]:"
    return [ChatMessage(role="system", content=system_prompt), *history, ChatMessage(role="user", content=user)]


def cited_numbers(answer: str, n_sources: int) -> list[int]:
    """Source numbers (1-based) the answer cites, in first-cited order, ignoring out-of-range ones."""
    seen: list[int] = []
    for match in _CITATION.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= n_sources and number not in seen:
            seen.append(number)
    return seen


def rewrite_messages(history: Sequence[ChatMessage], follow_up: str) -> list[ChatMessage]:
    """Ask the model to turn a follow-up into a standalone question (multi-turn only)."""
    turns = "\n".join(f"{m.role}: {m.content}" for m in history if m.role != "system")
    return [
        ChatMessage(role="system", content=(
            "Rewrite the user's last question so it can be understood without the conversation. "
            "Replace pronouns with the things they refer to. Keep the language of the question. "
            "Output only the rewritten question.")),
        ChatMessage(role="user",
                    content=f"Conversation:\n{turns}\n\nLast question: {follow_up}\n\nStandalone question:"),
    ]
