"""Language detection and BM25 analyzers (English: Snowball stems; Korean: Kiwi content morphemes)."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import cache
from typing import Any

import Stemmer

from services.text import Language, detect_language, hangul_ratio, split_sentences

__all__ = [
    "Language",
    "analyze",
    "analyze_many",
    "content_terms",
    "detect_language",
    "hangul_ratio",
    "kiwi",
    "split_sentences",
]

_LATIN_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
# Kiwi tags kept for BM25: nouns, verb/adjective stems, roots, foreign words, numbers, Chinese characters.
_KEPT_TAGS = ("NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH", "MAG")

_STOPWORDS_TEXT = """
a about above after again against all am an and any are as at be because been before being below between both but
by can could did do does doing down during each few for from further had has have having he her here hers herself
him himself his how i if in into is it its itself just me more most my myself no nor not of off on once only or
other our ours ourselves out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up very was we were what when where which while who whom
why will with would you your yours yourself yourselves s t don doesn didn isn wasn aren weren
"""
_ENGLISH_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

# Korean question words Kiwi keeps as content (pronouns, adverbs): they say what is asked, not what to look for
_KOREAN_QUESTION_WORDS = frozenset({"무엇", "누구", "언제", "어디", "얼마", "왜", "어느", "어떻", "뭐"})
# the words of a request around the topic ("X에 대해 설명해 주세요", "tell me about X"): they say how to answer,
# not what to look for (English ones as stemmed by the analyzer)
_REQUEST_TERMS = frozenset({"대하", "설명", "알리", "부탁", "간단히", "간단", "개념", "소개", "말하", "궁금", "수",
                            "있", "tell", "explain", "describ", "briefli", "brief", "pleas", "help", "understand",
                            "know", "like", "want", "wonder", "elabor", "overview", "summar", "summaris"})

_kiwi_lock = threading.Lock()


@cache
def kiwi() -> Any:
    """The process-wide Kiwi analyzer (slow to create, so created once, on first use)."""
    from kiwipiepy import Kiwi

    return Kiwi()


@cache
def _stemmer() -> Any:
    return Stemmer.Stemmer("english")


def _english_tokens(text: str) -> list[str]:
    words = [w.replace("’", "'").split("'")[0] for w in _LATIN_TOKEN.findall(text.lower())]
    kept = [w for w in words if w and w not in _ENGLISH_STOPWORDS]
    stems: list[str] = _stemmer().stemWords(kept)
    return stems


def _korean_tokens(text: str) -> list[str]:
    with _kiwi_lock:
        tokens = kiwi().tokenize(text)
    out: list[str] = []
    for tok in tokens:
        if not tok.tag.startswith(_KEPT_TAGS):
            continue
        if tok.tag == "SL":
            out.extend(_english_tokens(tok.form))
        else:
            # Kiwi joins some proper nouns across spaces ("제럴드 포드"): index their words, so terms never
            # hold whitespace (they are stored space-separated) and a query naming one part still matches
            out.extend(tok.form.lower().split())
    return out


def analyze(text: str) -> list[str]:
    """BM25 terms of ``text``. Text with Hangul goes through Kiwi, whose Latin tokens get English stems."""
    return _korean_tokens(text) if hangul_ratio(text) > 0 else _english_tokens(text)


def content_terms(terms: Sequence[str]) -> list[str]:
    """The BM25 terms of a question (``analyze``'s ``terms``) that name what to look for: Korean question
    words and the words of a request ("설명해 주세요", "tell me about") left out (English question words are
    stop words already)."""
    return [t for t in terms if t not in _KOREAN_QUESTION_WORDS and t not in _REQUEST_TERMS]


def analyze_many(texts: Sequence[str]) -> list[list[str]]:
    return [analyze(t) for t in texts]
