"""Latin names written in Hangul: "Reagan" / "레이건", "Totenkopf" / "토텐코프", "Xbox" / "엑스박스".

Korean questions often name a foreign person, place or product in its Latin spelling where the cached
question wrote it in Hangul. Both spellings keep the same consonants in the same order, so each word is
reduced to its consonant skeleton: a sequence of sound classes (k, t, p, s, j, r, n, m) with vowels, h,
w and y left out, doubled consonants and repeats merged, and the English spellings that Korean renders
otherwise mapped as it does ("x" is "ks", "c" is "s" before e/i/y, "gh" is silent, an "r" with no
vowel after it is silent: "Alexander" / "알렉산더"). Two words match when their skeletons have the same
length, at least :data:`MIN_CONSONANTS` classes, and agree class by class; "Nixon" (n-ks-n) is not
"레이건" (r-k-n).
"""

from __future__ import annotations

import re

__all__ = ["MIN_CONSONANTS", "same_name", "skeleton"]

MIN_CONSONANTS = 2  # one consonant ("Haig" / "헤이그": k) matches too many words to be evidence of a name

Skeleton = tuple[frozenset[str], ...]

_K, _T, _P, _S, _J, _R, _N, _M = (frozenset({c}) for c in "ktpsjrnm")
_TS = _T | _S
_JK = _J | _K
_JS = _J | _S
_INITIAL = (_K, _K, _N, _T, _T, _R, _M, _P, _P, _S, _S, None, _J, _J, _J, _K, _T, _P, None)  # ㄱ..ㅎ
_FINAL = (None, _K, _K, _K, _N, _N, _N, _T, _R, _R, _R, _R, _R, _R, _R, _R, _M, _P, _P, _TS, _TS, _N | _K, _T,
          _T, _K, _T, _P, None)  # none, ㄱ..ㅎ; ㅇ (ng) may be written "n" or "ng"
_LATIN = [  # longest spellings first
    ("sch", (_S,)), ("tch", (_J,)), ("ch", (_J | _K,)), ("sh", (_S,)), ("th", (_TS,)), ("ph", (_P,)),
    ("ck", (_K,)), ("gh", ()), ("ng", (_N | _K,)), ("qu", (_K,)), ("x", (_K, _S)), ("c", (_K,)), ("q", (_K,)),
    ("k", (_K,)), ("g", (_K,)), ("d", (_T,)), ("t", (_T,)), ("b", (_P,)), ("p", (_P,)), ("f", (_P,)),
    ("v", (_P,)), ("s", (_S,)), ("z", (_JS,)), ("j", (_J,)), ("l", (_R,)), ("r", (_R,)), ("n", (_N,)),
    ("m", (_M,)),
]
_VOWELS = frozenset("aeiouy")


def _hangul(word: str) -> list[frozenset[str]]:
    out: list[frozenset[str]] = []
    for ch in word:
        code = ord(ch) - 0xAC00
        if not 0 <= code < 11_172:
            return []
        initial, final = _INITIAL[code // 588], _FINAL[code % 28]
        out += [c for c in (initial, final) if c is not None]
    return out


def _latin(word: str) -> list[frozenset[str]]:
    text = word.casefold()
    out: list[frozenset[str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _VOWELS or ch in "hw":
            i += 1
            continue
        spelling, classes = next(((s, c) for s, c in _LATIN if text.startswith(s, i)), (ch, ()))
        after = text[i + len(spelling) : i + len(spelling) + 1]
        if spelling == "c" and after in ("e", "i", "y"):
            classes = (_S,)
        elif spelling == "g" and after in ("e", "i", "y"):
            classes = (_JK,)
        elif spelling == "r" and after not in _VOWELS:
            classes = ()  # "Alexander", "Oxford": no vowel follows, Korean writes none
        out += classes
        i += len(spelling)
    return out


def _merged(classes: list[frozenset[str]]) -> Skeleton:
    merged: list[frozenset[str]] = []
    for c in classes:
        if not merged or not merged[-1] & c:
            merged.append(c)
    return tuple(merged)


def skeleton(word: str) -> Skeleton:
    """The consonant classes of a Hangul or Latin word, repeats merged (empty for other words)."""
    hangul = bool(re.match(r"[\uac00-\ud7a3]", word))
    return _merged(_hangul(word) if hangul else _latin(word) if word.isascii() and word.isalpha() else [])


def same_name(latin: str, hangul: str) -> bool:
    """The Latin word and the Hangul word share a consonant skeleton of at least :data:`MIN_CONSONANTS`."""
    a, b = skeleton(latin), skeleton(hangul)
    return len(a) == len(b) >= MIN_CONSONANTS and all(x & y for x, y in zip(a, b, strict=True))
