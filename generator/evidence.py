"""How much of a question a piece of text covers, lexically: English word stems, Korean character bigrams
(robust to particles and spacing without a morphological analyzer), each weighted by its rarity among the
sentences at hand. Used to pick answer sentences (extractive backend) and to judge whether the retrieved
evidence covers the question at all (abstention)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import Stemmer

from services.contracts import ScoredChunk
from services.text import split_sentences

__all__ = ["Evidence", "SentenceScore", "Weights", "coverage", "gather", "score_sentences", "sentences_of", "units"]

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_WORD = re.compile(r"\w+", re.UNICODE)
_CITATION = re.compile(r"\[\d{1,2}\]")
_EN_STOP_TEXT = """a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he
her here hers him his how i if in into is it its itself just me more most my no nor not of off on once only or other
our out over own same she should so some such than that the their them then there these they this those through to
too under until up very was we were what when where which while who whom why will with would you your yours s t
name named called many much kind type"""
_EN_STOP = frozenset(_EN_STOP_TEXT.split())
# Korean question words and endings: they say what is asked, not what to look for.
_KO_QUESTION_WORDS = ("무엇", "무슨", "어떤", "어떻게", "어디", "언제", "누구", "누가", "몇", "얼마", "왜", "인가요",
                      "인가", "나요", "까요", "습니까", "입니까", "였나", "었나", "했나", "하나요", "되나요", "있나요",
                      "는가", "은가")
# the words of a request around the topic: they say how to answer, not what to look for
_KO_REQUEST_WORDS = ("에 대해", "에 대한", "설명해", "설명", "알려", "주세요", "줄래요", "줄 수", "부탁합니다",
                     "부탁해요", "부탁", "간단히", "개념을", "개념", "소개해", "말해")
_EN_REQUEST = frozenset({"tell", "explain", "describe", "briefly", "brief", "please", "help", "understand", "know",
                         "like", "want", "wonder", "elaborate", "overview", "summarize", "summarise"})
_KO_QUESTION = tuple(sorted(_KO_QUESTION_WORDS + _KO_REQUEST_WORDS, key=len, reverse=True))  # longest first


@cache
def _stemmer() -> Any:
    return Stemmer.Stemmer("english")


def units(text: str, *, question: bool = False) -> list[str]:
    """Matching units of ``text``: English stems without stop words; Korean character bigrams inside each
    word (a one-syllable word is kept whole). For a question, question words and the words of a request
    ("설명해 주세요", "tell me about") are left out."""
    text = unicodedata.normalize("NFKC", _CITATION.sub(" ", text)).lower()
    if question:
        for phrase in _KO_REQUEST_WORDS:
            if " " in phrase:
                text = text.replace(phrase, " ")
    out: list[str] = []
    for word in _WORD.findall(text):
        if _HANGUL.search(word):
            if question:
                for ending in _KO_QUESTION:
                    word = word.replace(ending, " ")
            for part in word.split():
                out.extend(part[i:i + 2] for i in range(len(part) - 1)) if len(part) > 1 else out.append(part)
        elif word not in _EN_STOP and (len(word) > 1 or word.isdigit()) and not (question and word in _EN_REQUEST):
            out.append(_stemmer().stemWord(word))
    return out


class Weights:
    """Inverse document frequency of units over a set of texts (the sentences of the sources at hand)."""

    def __init__(self, texts: Iterable[Sequence[str]]) -> None:
        counts: Counter[str] = Counter()
        n = 0
        for text_units in texts:
            counts.update(set(text_units))
            n += 1
        self._counts, self._n = counts, max(n, 1)

    def __call__(self, unit: str) -> float:
        return math.log(1.0 + (self._n + 1) / (self._counts.get(unit, 0) + 0.5))


def coverage(question_units: Sequence[str], text_units: Iterable[str], weights: Weights) -> float:
    """The weighted share of the question's distinct units found in the text (0..1)."""
    wanted = set(question_units)
    if not wanted:
        return 0.0
    have = set(text_units)
    total = sum(weights(u) for u in wanted)
    return sum(weights(u) for u in wanted & have) / total


_MARKUP = re.compile(r"^\s*(?:#+|[-*+>]|\d+[.)])\s+")


def sentences_of(text: str, *, min_chars: int = 12) -> list[str]:
    """Sentences of a source that can stand as an answer: Markdown headings and list marks stripped,
    lines split, fragments shorter than ``min_chars`` dropped."""
    out: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue  # a heading names a topic; it is not a statement
        line = _MARKUP.sub("", line).strip()
        out.extend(s for s in split_sentences(line) if len(s) >= min_chars)
    return out


@dataclass(frozen=True)
class SentenceScore:
    number: int  # the source's number (1-based, in the order given)
    position: int  # the sentence's position in its source
    text: str
    coverage: float  # question units in the sentence, plus ``context_weight`` x those only in its context
    own: float = 0.0  # question units in the sentence alone


@dataclass(frozen=True)
class Evidence:
    """The question's units, the sources' units and every answer-worthy sentence scored against the question."""

    wanted: list[str]
    weights: Weights
    source_units: list[set[str]]  # per source, in the order given: its title's and text's units
    sentences: list[SentenceScore]

    def covered(self, text_units: Iterable[str]) -> float:
        return coverage(self.wanted, text_units, self.weights)


def gather(question: str, sources: Sequence[ScoredChunk], *, context_weight: float) -> Evidence:
    """Every answer-worthy sentence of ``sources`` scored by how much of the question it covers. A sentence's
    context (its source's title and the sentence before it) counts at ``context_weight``, so "It was built in
    1871" still answers "When was the Aurora lighthouse built?". Weights are IDF over these sentences: words
    every retrieved passage shares (the topic) count less than the ones that single out the answer."""
    wanted = units(question, question=True)
    found = []
    source_units: list[set[str]] = []
    for n, chunk in enumerate(sources, 1):
        title = units(chunk.title)
        previous = title
        seen = set(title)
        for i, sentence in enumerate(sentences_of(chunk.text)):
            own = units(sentence)
            found.append((n, i, sentence, own, previous))
            seen.update(own)
            previous = title + own
        source_units.append(seen)
    weights = Weights(own for _, _, _, own, _ in found)
    out = []
    if wanted:
        for n, i, sentence, own, around in found:
            inside = coverage(wanted, own, weights)
            beside = coverage(wanted, [*own, *around], weights) - inside
            out.append(SentenceScore(n, i, sentence, inside + context_weight * beside, inside))
    return Evidence(wanted, weights, source_units, out)


def score_sentences(question: str, sources: Sequence[ScoredChunk], *, context_weight: float) -> list[SentenceScore]:
    """The sentences of :func:`gather` (none when the question has no units or the sources no sentences)."""
    return gather(question, sources, context_weight=context_weight).sentences
