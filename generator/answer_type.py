"""What kind of answer a question asks for, and whether a sentence can hold one: a "how many" / "몇" question
needs a number, a "when" / "언제" question a date. Used by abstention: the best sentence of the sources may
share the question's words and still not hold the kind of fact it asks for."""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["AnswerType", "answer_type", "holds"]

AnswerType = Literal["number", "date", "any"]

_EN_DATE = re.compile(r"\b(?:when|what (?:year|years|century|decade|date|day|month|time period|era)|which "
                      r"(?:year|century|decade|date|day|month)|in what (?:year|century|decade))\b")
_EN_NUMBER = re.compile(r"\bhow (?:many|much|long|old|far|large|big|high|tall|wide|deep|often|fast)\b|"
                        r"\bwhat (?:percent|percentage|proportion|fraction|number|amount|share|size)\b")
_KO_DATE = re.compile(r"언제|몇\s*(?:년|년도|월|일|세기|년대)|어느\s*(?:해|시기|년도|연도)|연도는|년도는|시기는")
_KO_NUMBER = re.compile(r"몇|얼마")

_DIGIT = re.compile(r"\d")
_EN_NUMBER_WORD = re.compile(r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
                             r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|"
                             r"sixty|seventy|eighty|ninety|hundred|hundreds|thousand|thousands|million|millions|"
                             r"billion|billions|dozen|dozens|half|twice|single|double|triple|several|first|second|"
                             r"third|once)\b")
_EN_DATE_WORD = re.compile(r"\b(?:january|february|march|april|may|june|july|august|september|october|november|"
                           r"december|century|centuries|decade|spring|summer|autumn|fall|winter|ancient|medieval|"
                           r"bc|ad|bce|ce|era|age|period|dynasty|reign|war)\b")
_KO_NUMBER_WORD = re.compile(r"[한두세네]\s?(?:번|명|개|차례|가지|배|곳|해|달)|다섯|여섯|일곱|여덟|아홉|열|스무|서른|"
                             r"백|천|만|억|절반|[일이삼사오육칠팔구십]+\s?(?:년|월|일|명|개|차|세|번|회|위)")
_KO_DATE_WORD = re.compile(r"세기|시대|왕조|년대|초기|중기|후기|말기|전쟁|봄|여름|가을|겨울|오전|오후|새벽|"
                           r"[일이삼사오육칠팔구십]+월")


def answer_type(question: str, language: str) -> AnswerType:
    """The kind of fact the question asks for ('any' when it does not say)."""
    text = question.lower()
    if language == "ko":
        return "date" if _KO_DATE.search(text) else "number" if _KO_NUMBER.search(text) else "any"
    return "date" if _EN_DATE.search(text) else "number" if _EN_NUMBER.search(text) else "any"


def holds(sentence: str, kind: AnswerType) -> bool:
    """Whether ``sentence`` can hold an answer of ``kind``: a digit, or a number (date) word."""
    if kind == "any" or _DIGIT.search(sentence):
        return True
    text = sentence.lower()
    words = (_EN_NUMBER_WORD, _KO_NUMBER_WORD) if kind == "number" else (_EN_DATE_WORD, _KO_DATE_WORD)
    return any(pattern.search(text) for pattern in words)
