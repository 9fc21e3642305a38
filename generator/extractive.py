"""An answerer without a language model: the sentences of the numbered sources that best cover the question,
each cited as [n]. It cannot invent a fact (every sentence is copied from a source), it answers in the sources'
language, and it costs no LLM call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from generator.evidence import score_sentences
from services.contracts import AnswerContext, ChatMessage, Completion, Delta, GenerationParams, Usage

__all__ = ["Candidate", "ExtractiveGenerator", "ExtractiveOptions", "pick"]

_END = (".", "!", "?", "。", "…")


@dataclass(frozen=True)
class ExtractiveOptions:
    """How sentences are picked and streamed."""

    max_sentences: int = 2  # sentences in an answer
    second_ratio: float = 0.75  # a further sentence joins when it scores at least this share of the best
    rank_weight: float = 0.08  # bonus of the first source over a far-down one (scaled by 1/rank)
    context_weight: float = 0.75  # credit for question units found in the sentence's context (title, previous
    # sentence) rather than in the sentence itself: "It was built in 1871" answers "When was X built?"
    piece_chars: int = 16  # characters per streamed piece


@dataclass(frozen=True)
class Candidate:
    number: int  # the source's number in the prompt (1-based)
    position: int  # the sentence's position in its source
    text: str
    score: float


def pick(context: AnswerContext, options: ExtractiveOptions) -> list[Candidate]:
    """The best sentences, best first: weighted question coverage plus a small prior for better-ranked sources."""
    found = score_sentences(context.question, context.sources, context_weight=options.context_weight)
    if not found:
        return []
    scored = [Candidate(f.number, f.position, f.text, f.coverage + options.rank_weight / f.number) for f in found]
    scored.sort(key=lambda c: (-c.score, c.number, c.position))
    best = scored[0]
    chosen = [best]
    for candidate in scored[1:]:
        if len(chosen) >= options.max_sentences or candidate.score < options.second_ratio * best.score:
            break
        if candidate.text != best.text:
            chosen.append(candidate)
    return chosen


def _cited(candidate: Candidate) -> str:
    """The sentence with its citation before the final punctuation: "... in 1871 [1]."."""
    text = candidate.text.rstrip()
    if text.endswith(_END):
        return f"{text[:-1].rstrip()} [{candidate.number}]{text[-1]}"
    return f"{text} [{candidate.number}]"


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0  # an estimate: there is no model tokenizer here


class ExtractiveGenerator:
    """Implements services.protocols.Generator from ``context``: no model call, deterministic, always finishes.

    Without ``context`` (a follow-up rewrite) it returns an empty completion: with no model to rewrite, the
    pipeline's fallback (the earlier question with the follow-up) stands alone instead."""

    def __init__(self, options: ExtractiveOptions | None = None) -> None:
        self.options = options or ExtractiveOptions()

    def answer(self, context: AnswerContext, max_tokens: int) -> tuple[str, str]:
        """The answer text and its finish reason (``length`` only when even one sentence exceeds max_tokens)."""
        chosen = pick(context, self.options)
        text = ""
        for candidate in chosen:
            longer = f"{text} {_cited(candidate)}".strip()
            if text and _tokens(longer) > max_tokens:
                break
            text = longer
        if _tokens(text) > max_tokens:
            return text[: max_tokens * 4].rstrip(), "length"
        return text, "stop"

    async def ready(self) -> dict[str, bool]:
        """Nothing to load or reach: always ready."""
        return {"extractive": True}

    async def complete(self, messages: Sequence[ChatMessage], params: GenerationParams,
                       context: AnswerContext | None = None) -> Completion:
        if context is None:
            return Completion(text="", finish_reason="stop")
        text, finish = self.answer(context, params.max_tokens)
        return Completion(text=text, finish_reason=finish, usage=self._usage(messages, text))

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams,
                     context: AnswerContext | None = None) -> AsyncIterator[Delta]:
        text, finish = self.answer(context, params.max_tokens) if context is not None else ("", "stop")
        step = self.options.piece_chars
        for start in range(0, len(text), step):
            yield Delta(text=text[start:start + step])
        yield Delta(finish_reason=finish, usage=self._usage(messages, text))

    @staticmethod
    def _usage(messages: Sequence[ChatMessage], text: str) -> Usage:
        return Usage(prompt_tokens=_tokens("".join(m.content for m in messages)), completion_tokens=_tokens(text))
