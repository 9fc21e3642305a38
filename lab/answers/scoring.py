"""Per-answer scores: gold containment and F1 (English: SQuAD normalization; Korean: no spaces, trailing
particles off), citations against gold passages, abstention, and lexical faithfulness."""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import Stemmer

from retriever.text import split_sentences

__all__ = [
    "ABSTENTION_MARKERS",
    "answer_f1",
    "answer_sentences",
    "contains_gold",
    "content_units",
    "is_abstention",
    "normalize",
    "strip_josa",
    "supported",
]

_STEMMER = Stemmer.Stemmer("english")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATION = re.compile(r"\[\d{1,2}\]")
_PUNCT = set(string.punctuation) | set("“”‘’«»·…、。，！？「」『』（）《》〈〉【】")
# Korean particles and copula endings that can trail a noun phrase, longest first.
_JOSA = ("이었습니다", "였습니다", "입니다", "이었다", "에서는", "에게서", "으로는", "으로서", "으로써", "이라는",
         "라는", "에서", "에게", "으로", "까지", "부터", "처럼", "보다", "이다", "였다", "이며", "이고", "과는",
         "와는", "에는", "로는", "은", "는", "이", "가", "을", "를", "의", "에", "로", "와", "과", "도", "만", "다")
_EN_STOP_TEXT = """a an the of in on at to for from by with and or is are was were be been being do does did
what which who whom whose when where why how that this these those it its as into than then there their they he she
his her him i you we our your not no yes"""
_EN_STOP = frozenset(_EN_STOP_TEXT.split())


def _is_korean(text: str) -> bool:
    return bool(_HANGUL.search(text))


def normalize(text: str) -> str:
    """English: lower case, no punctuation or articles, single spaces. Korean: the same without any spaces."""
    text = unicodedata.normalize("NFKC", _CITATION.sub(" ", text)).lower()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    if _is_korean(text):
        return "".join(text.split())
    return " ".join(_ARTICLES.sub(" ", text).split())


def strip_josa(text: str) -> str:
    """A Korean gold answer without a trailing particle ("대한민국의" -> "대한민국"); never emptied."""
    for josa in _JOSA:
        if text.endswith(josa) and len(text) > len(josa) + 1:
            return text[: -len(josa)]
    return text


def contains_gold(answer: str, golds: Iterable[str]) -> bool:
    """A normalized gold answer occurs in the normalized answer (Korean: ignoring spaces and a trailing particle
    on the gold; English: on word boundaries)."""
    norm = normalize(answer)
    for gold in golds:
        g = normalize(gold)
        if not g:
            continue
        if _is_korean(g):
            if g in norm or strip_josa(g) in norm:
                return True
        elif f" {g} " in f" {norm} ":
            return True
    return False


def _f1(pred: Sequence[str], gold: Sequence[str]) -> float:
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def answer_f1(answer: str, golds: Iterable[str]) -> float:
    """Best token F1 over the golds (characters, spaces removed, for Korean), as the SQuAD/KorQuAD scripts do."""
    best = 0.0
    for gold in golds:
        g = normalize(gold)
        pred = normalize(answer)
        if _is_korean(g):
            best = max(best, _f1(list(pred), list(strip_josa(g))), _f1(list(pred), list(g)))
        else:
            best = max(best, _f1(pred.split(), g.split()))
    return best


# ---------------------------------------------------------------- abstention

# Phrases that mean "the documents do not say" (ragd's own texts and the usual model wordings).
ABSTENTION_MARKERS = (
    "do not cover", "don't cover", "does not cover", "do not contain", "does not contain", "don't contain",
    "do not know", "don't know", "no information", "not mentioned", "cannot answer", "can't answer",
    "not enough information", "unable to answer", "not in the sources", "not covered",
    "다루지 않", "알 수 없", "정보가 없", "찾을 수 없", "포함되어 있지 않", "모르겠", "답할 수 없", "언급되어 있지 않",
    "나와 있지 않", "내용이 없",
)


def is_abstention(answer: str, cited: int, extra: Iterable[str] = ()) -> bool:
    """An answer that declines: it cites nothing and says the documents do not cover the question."""
    if cited:
        return False
    text = " ".join(answer.lower().split())
    return any(marker in text for marker in (*ABSTENTION_MARKERS, *(e.lower() for e in extra)))


# ---------------------------------------------------------------- faithfulness (lexical)


def content_units(text: str) -> set[str]:
    """What support is judged on: Korean character bigrams (no spaces), English lower-case words without
    stop words (numbers included)."""
    text = unicodedata.normalize("NFKC", _CITATION.sub(" ", text)).lower()
    units: set[str] = set()
    for word in re.findall(r"\w+", text):
        if _is_korean(word):
            units.update(word[i:i + 2] for i in range(len(word) - 1)) if len(word) > 1 else units.add(word)
        elif word not in _EN_STOP:
            units.add(_stem(word))
    return units


def _stem(word: str) -> str:
    stem: str = _STEMMER.stemWord(word)
    return stem


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:[.,]\d+)*", _CITATION.sub(" ", text)))


def answer_sentences(answer: str) -> list[str]:
    """The answer's sentences, without a trailing ``Sources:`` list and without bare citation marks."""
    body = answer.split("\n\nSources:")[0]
    out = []
    for sentence in split_sentences(body):
        if content_units(sentence):
            out.append(sentence)
    return out


def supported(sentence: str, sources: Sequence[str], threshold: float = 0.7) -> bool:
    """Lexical support: every number of the sentence occurs in the cited sources, and at least ``threshold``
    of its content units (English stems, Korean character bigrams) do."""
    units = content_units(sentence)
    if not units:
        return True
    joined = "\n".join(sources)
    if not _numbers(sentence) <= _numbers(joined):
        return False
    pool = content_units(joined)
    return len(units & pool) / len(units) >= threshold
