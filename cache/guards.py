"""Precision guards: lexical checks that reject a semantic neighbour which asks something else.

Embeddings place "is X allowed?" next to "is X not allowed?", "2019" next to "2020" and "A sued B"
next to "B sued A". Each guard below is cheap, language-aware (English and Korean) and errs on the
side of a miss: a rejected paraphrase costs one generation, a false hit serves a wrong answer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = ["GUARDS", "reject_reason"]

_WORD = re.compile(r"[0-9]+(?:[.,:/][0-9]+)*|[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")

_EN_NUMBERS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "fifteen": "15",
    "twenty": "20",
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "hundred": "100",
    "thousand": "1000",
    "million": "1e6",
    "billion": "1e9",
    "first": "1",
    "third": "3",
    "fourth": "4",
    "fifth": "5",
    "once": "1",
    "twice": "2",
    "half": "0.5",
    "dozen": "12",
    "single": "1",
    "double": "2",
    "triple": "3",
}
_KO_NUMBERS = {
    "하나": "1",
    "한": "1",
    "첫": "1",
    "둘": "2",
    "두": "2",
    "셋": "3",
    "세": "3",
    "넷": "4",
    "네": "4",
    "다섯": "5",
    "여섯": "6",
    "일곱": "7",
    "여덟": "8",
    "아홉": "9",
    "열": "10",
    "스무": "20",
    "백": "100",
    "천": "1000",
    "만": "1e4",
    "억": "1e8",
    "절반": "0.5",
}
_KO_COUNTERS = (
    "개",
    "명",
    "번",
    "살",
    "시",
    "달",
    "가지",
    "시간",
    "권",
    "대",
    "째",
    "년",
    "주",
    "차",
    "배",
    "장",
    "일",
)
_TEMPORAL = {
    **{
        m: f"m{i}"
        for i, m in enumerate(
            [
                "january",
                "february",
                "march",
                "april",
                "may",
                "june",
                "july",
                "august",
                "september",
                "october",
                "november",
                "december",
            ],
            start=1,
        )
    },
    **{
        d: f"d{i}"
        for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"], start=1)
    },
    "today": "t0",
    "yesterday": "t-1",
    "tomorrow": "t+1",
    "tonight": "t0",
    "weekend": "we",
    "weekday": "wd",
    "오늘": "t0",
    "어제": "t-1",
    "내일": "t+1",
    "모레": "t+2",
    "작년": "y-1",
    "올해": "y0",
    "내년": "y+1",
    "지난해": "y-1",
    "주말": "we",
    "평일": "wd",
    "오전": "am",
    "오후": "pm",
    "morning": "am",
    "afternoon": "pm",
    "evening": "pm",
}
_KO_WEEKDAYS = {
    "월요일": "d1",
    "화요일": "d2",
    "수요일": "d3",
    "목요일": "d4",
    "금요일": "d5",
    "토요일": "d6",
    "일요일": "d7",
}

_EN_NEGATION = {
    "not",
    "no",
    "never",
    "none",
    "nobody",
    "nothing",
    "neither",
    "nor",
    "without",
    "cannot",
    "can't",
    "won't",
    "don't",
    "doesn't",
    "didn't",
    "isn't",
    "aren't",
    "wasn't",
    "weren't",
    "shouldn't",
    "couldn't",
    "wouldn't",
    "mustn't",
    "haven't",
    "hasn't",
    "hadn't",
    "except",
    "excluding",
    "unable",
    "fail",
    "fails",
    "failed",
    "lack",
    "lacks",
    "non",
}
_KO_NEGATION = ("않", "없", "못", "아니", "아닌", "말고", "제외", "불가", "금지", "안 ", "비허용", "빼고", "불허")

_ANTONYMS = [
    ("before", "after"),
    ("more", "less"),
    ("more", "fewer"),
    ("maximum", "minimum"),
    ("max", "min"),
    ("increase", "decrease"),
    ("highest", "lowest"),
    ("largest", "smallest"),
    ("biggest", "smallest"),
    ("earliest", "latest"),
    ("above", "below"),
    ("over", "under"),
    ("first", "last"),
    ("oldest", "newest"),
    ("oldest", "youngest"),
    ("longest", "shortest"),
    ("cheapest", "most"),
    ("best", "worst"),
    ("upload", "download"),
    ("import", "export"),
    ("input", "output"),
    ("buy", "sell"),
    ("enable", "disable"),
    ("start", "stop"),
    ("open", "close"),
    ("add", "remove"),
    ("allowed", "forbidden"),
    ("legal", "illegal"),
    ("win", "lose"),
    ("rise", "fall"),
    ("inbound", "outbound"),
    ("north", "south"),
    ("east", "west"),
    ("hot", "cold"),
    ("이전", "이후"),
    ("전에", "후에"),
    ("최대", "최소"),
    ("최고", "최저"),
    ("증가", "감소"),
    ("이상", "이하"),
    ("초과", "미만"),
    ("처음", "마지막"),
    ("가장 큰", "가장 작은"),
    ("높은", "낮은"),
    ("많은", "적은"),
    ("비싼", "싼"),
    ("오른", "내린"),
    ("상승", "하락"),
    ("구매", "판매"),
    ("입력", "출력"),
    ("업로드", "다운로드"),
    ("시작", "종료"),
    ("활성화", "비활성화"),
    ("추가", "삭제"),
    ("합법", "불법"),
    ("승리", "패배"),
    ("북쪽", "남쪽"),
    ("동쪽", "서쪽"),
    ("입국", "출국"),
    ("수입", "수출"),
    ("장점", "단점"),
    ("오래된", "최신"),
]

# Korean case particles grouped by role; a stem that changes role between two questions swapped places.
_KO_ROLES = [
    ("subject", ("께서", "이", "가", "은", "는")),
    ("object", ("을", "를")),
    ("dative", ("에게서", "한테서", "에게", "한테", "께")),
    ("source", ("에서부터", "에서", "부터")),
    ("goal", ("까지", "으로", "로")),
]


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _words(text: str) -> list[str]:
    return _WORD.findall(_norm(text))


def _numbers(text: str) -> set[str]:
    found: set[str] = set()
    words = [w.casefold() for w in _words(text)]
    for i, word in enumerate(words):
        if word[0].isdigit():
            found.add(word.replace(",", ""))
        elif word in _EN_NUMBERS:
            found.add(_EN_NUMBERS[word])
        elif word in _KO_NUMBERS and i + 1 < len(words) and words[i + 1].startswith(_KO_COUNTERS):
            found.add(_KO_NUMBERS[word])
        else:
            for stem, value in _KO_NUMBERS.items():
                if len(stem) > 1 and word.startswith(stem):
                    found.add(value)
    return found


def _temporal(text: str) -> set[str]:
    found = set()
    lowered = _norm(text).casefold()
    for word in _words(lowered):
        if word in _TEMPORAL:
            found.add(_TEMPORAL[word])
    for name, token in {**_KO_WEEKDAYS, **{k: v for k, v in _TEMPORAL.items() if _HANGUL.match(k)}}.items():
        if name in lowered:
            found.add(token)
    return found


def _negated(text: str) -> bool:
    lowered = _norm(text).casefold().replace("’", "'")
    words = set(_words(lowered))
    if words & _EN_NEGATION or "n't" in lowered:
        return True
    padded = f" {lowered} "
    return any(marker in padded for marker in _KO_NEGATION)


def _has(text: str, word: str) -> bool:
    if _HANGUL.search(word):
        return word in text
    return re.search(rf"\b{re.escape(word)}\b", text) is not None


def _antonym_flip(query: str, candidate: str) -> bool:
    q, c = _norm(query).casefold(), _norm(candidate).casefold()
    for a, b in _ANTONYMS:
        qa, qb, ca, cb = _has(q, a), _has(q, b), _has(c, a), _has(c, b)
        if (qa and not qb and cb and not ca) or (qb and not qa and ca and not cb):
            return True
    return False


def _entities(text: str) -> list[str]:
    """Names, codes and acronyms in order of appearance: capitalised words past the first, tokens
    with digits or inner capitals, and Latin words inside Korean text."""
    words = _words(text)
    korean = bool(_HANGUL.search(text))
    found: list[str] = []
    for i, word in enumerate(words):
        latin = word.isascii() and word.isalpha()
        named = (i > 0 and word[:1].isupper()) or any(ch.isupper() for ch in word[1:]) or (korean and latin)
        coded = any(ch.isdigit() for ch in word) and any(ch.isalpha() for ch in word)
        if (named or coded) and word.casefold() not in found:
            found.append(word.casefold())
    return found


def _entity_change(query: str, candidate: str) -> bool:
    return set(_entities(query)) != set(_entities(candidate))


def _entity_swap(query: str, candidate: str) -> bool:
    eq, ec = _entities(query), _entities(candidate)
    return len(eq) >= 2 and set(eq) == set(ec) and eq != ec


def _ko_roles(text: str) -> dict[str, str]:
    roles: dict[str, str] = {}
    for word in _words(text):
        if not _HANGUL.search(word):
            continue
        for role, particles in _KO_ROLES:
            particle = next((p for p in particles if word.endswith(p) and len(word) > len(p) + 1), None)
            if particle is not None:
                roles.setdefault(word[: -len(particle)], role)
                break
    return roles


def _ko_role_swap(query: str, candidate: str) -> bool:
    rq, rc = _ko_roles(query), _ko_roles(candidate)
    shared = [stem for stem in rq if stem in rc]
    swapped = [stem for stem in shared if rq[stem] != rc[stem]]
    return len(swapped) >= 2


def _content_order_swap(query: str, candidate: str) -> bool:
    """Same words, different order around a relation ("dog bites man" vs "man bites dog")."""
    wq, wc = [w.casefold() for w in _words(query)], [w.casefold() for w in _words(candidate)]
    if sorted(wq) != sorted(wc) or wq == wc:
        return False
    return [w for w in wq if len(w) > 3] != [w for w in wc if len(w) > 3]


GUARDS: dict[str, Callable[[str, str], bool]] = {
    "number": lambda q, c: _numbers(q) != _numbers(c),
    "date": lambda q, c: _temporal(q) != _temporal(c),
    "negation": lambda q, c: _negated(q) != _negated(c),
    "antonym": _antonym_flip,
    "entity_swap": _entity_swap,
    "entity": _entity_change,
    "role_swap": _ko_role_swap,
    "word_order": _content_order_swap,
}


def reject_reason(query: str, candidate: str) -> str | None:
    """The name of the first guard that tells the two questions apart, or None when none does."""
    for name, differs in GUARDS.items():
        if differs(query, candidate):
            return name
    return None
