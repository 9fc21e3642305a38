"""An answerer without a language model: the sentences of the numbered sources that best cover the question,
each cited as [n]. It cannot invent a fact (every sentence is copied from a source), it answers in the sources'
language, and it costs no LLM call.

A chosen sentence that opens by pointing back ("This is how...", "It was built...", "이는...", "그는...") and owes
part of its score to the sentence before it is answered with that sentence in front, so the answer says what
"this" or "he" is."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from generator.evidence import SentenceScore, score_sentences
from services.contracts import AnswerContext, ChatMessage, Completion, Delta, GenerationParams, Usage

__all__ = ["Candidate", "ExtractiveGenerator", "ExtractiveOptions", "pick"]

_END = (".", "!", "?", "。", "…")
# the opening words of a sentence that leans on the one before it
_BACK_REFERENCE = re.compile(
    r"(?:This|That|These|Those|It|Its|They|Their|Such|Thus|Hence|He|She|His|Her)\b"
    r"|(?:이는|이것은|이것이|이를|이에|이로써|이로|이처럼|이렇게|이 때문에|그래서|따라서|그러므로|그 결과"
    r"|그는|그녀는|그것은|그의)(?:\s|,)"
)


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
    lead: str = ""  # the sentence before it, shown first when this one points back to it


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
    return _with_leads(chosen, found)


def _with_leads(chosen: list[Candidate], found: Sequence[SentenceScore]) -> list[Candidate]:
    """Each chosen sentence that points back and was credited for its context gets the sentence before it as
    its lead; when that sentence is chosen too, it is moved to stand right before instead."""
    by_place = {(f.number, f.position): f for f in found}
    places = {(c.number, c.position) for c in chosen}

    def leans(c: Candidate) -> SentenceScore | None:
        sentence, before = by_place[(c.number, c.position)], by_place.get((c.number, c.position - 1))
        leaning = before is not None and sentence.coverage > sentence.own and _BACK_REFERENCE.match(c.text)
        return before if leaning else None

    out = [c if (before := leans(c)) is None or (before.number, before.position) in places
           else replace(c, lead=before.text) for c in chosen]
    for candidate in list(out):
        if leans(candidate) is not None and (candidate.number, candidate.position - 1) in places:
            earlier = next(c for c in out if (c.number, c.position) == (candidate.number, candidate.position - 1))
            out.remove(earlier)
            out.insert(out.index(candidate), earlier)
    return out


def _cited(candidate: Candidate) -> str:
    """The sentence (after its lead, if any, each) with its citation before the final punctuation: "... in 1871
    [1]."."""
    def cite(text: str) -> str:
        text = text.rstrip()
        if text.endswith(_END):
            return f"{text[:-1].rstrip()} [{candidate.number}]{text[-1]}"
        return f"{text} [{candidate.number}]"

    return f"{cite(candidate.lead)} {cite(candidate.text)}" if candidate.lead else cite(candidate.text)


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
            if candidate.lead and _tokens(longer) > max_tokens:  # no room for its lead: the sentence alone
                longer = f"{text} {_cited(replace(candidate, lead=''))}".strip()
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
