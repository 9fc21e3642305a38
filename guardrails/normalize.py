"""Text normalisation before detection: undo the cheap obfuscations attackers use.

NFKC (full-width letters, ligatures), zero-width characters removed, separators inside words
dropped (``시*스*템``, ``i.g.n.o.r.e``), and Korean compatibility jamo recomposed into syllables
(``ㅅㅣㅅㅡㅌㅔㅁ`` -> ``시스템``).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["compose_jamo", "korean_stems", "language_of", "normalize"]

_ZERO_WIDTH = re.compile(r"[\u200b-\u200f\u2060-\u2064\ufeff\u00ad]")
_HANGUL_SEP = re.compile(r"(?<=[\uac00-\ud7a3\u3131-\u318e])[*·.\-_/|~^+]{1,2}(?=[\uac00-\ud7a3\u3131-\u318e])")
_HANGUL_SPACED = re.compile(
    r"(?<![\uac00-\ud7a3])(?:[\uac00-\ud7a3][ \t\u3000]{1,3}){3,}[\uac00-\ud7a3](?![\uac00-\ud7a3])")
_LATIN_SPACED = re.compile(r"\b(?:[A-Za-z][ .*_\-]){3,}[A-Za-z]\b")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
# Cyrillic and Greek letters that look Latin (``уоu`` with Cyrillic у/о).
_CONFUSABLES = str.maketrans("аеорсхуіјѕԁһӏκνοτυαεικρχАВЕКМНОРСТХЅІЈУΑΒΕΗΙΚΜΝΟΡΤΧΥΖ",
                             "aeopcxyijsdhlkvotuaeikpxABEKMHOPCTXSIJYABEHIKMNOPTXYZ")
# One separator after every character (``\I\g\n\o\r\e``, ``i|g|n|o|r|e``): drop it when it is a third of the text.
_SEPARATORS = "\\|/~^"
_LEET = str.maketrans("013457$€@+|!", "oieastseatli")
_MIXED_TOKEN = re.compile(r"\b(?=[\w$€@+|!]*[A-Za-z])(?=[\w$€@+|!]*[0-9$€@+|!])[\w$€@+|!]{4,}")

_CHO = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONG = ["", *"ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"]


def compose_jamo(text: str) -> str:
    """Recompose runs of compatibility jamo (consonant, vowel, optional final) into syllables."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _CHO and i + 1 < n and text[i + 1] in _JUNG:
            cho, jung = _CHO.index(c), _JUNG.index(text[i + 1])
            jong = 0
            if i + 2 < n and text[i + 2] in _JONG[1:] and not (i + 3 < n and text[i + 3] in _JUNG):
                jong = _JONG.index(text[i + 2])
                i += 1
            out.append(chr(0xAC00 + (cho * 21 + jung) * 28 + jong))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _unleet(token: str) -> str:
    """``1gn0r3`` -> ``ignore``; tokens that are mostly digits (years, versions, ids) stay."""
    letters = sum(c.isalpha() for c in token)
    return token.translate(_LEET) if letters >= len(token) / 2 else token


def _unseparate(text: str) -> str:
    for sep in _SEPARATORS:
        if len(text) >= 12 and text.count(sep) * 3 >= len(text):
            text = text.replace(sep, "")
    return text


def normalize(text: str) -> str:
    """The form every detector sees; placeholders and meaning are kept, obfuscation removed."""
    text = _unseparate(_ZERO_WIDTH.sub("", text))
    if _HANGUL.search(text):
        text = _HANGUL_SEP.sub("", compose_jamo(text))
        text = _HANGUL_SPACED.sub(lambda m: re.sub(r"[ \t\u3000]", "", m.group(0)), text)
    text = unicodedata.normalize("NFKC", text).translate(_CONFUSABLES)
    text = _MIXED_TOKEN.sub(lambda m: _unleet(m.group(0)), text)
    return _LATIN_SPACED.sub(lambda m: re.sub(r"[ .*_\-]", "", m.group(0)), text)


def language_of(text: str) -> str:
    """'ko' when a noticeable share of letters is Hangul, else 'en'."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "en"
    hangul = sum(1 for c in letters if "\uac00" <= c <= "\ud7a3" or "\u3131" <= c <= "\u318e")
    return "ko" if hangul / len(letters) >= 0.2 else "en"


# Korean attaches particles and verb endings to the word: "지시를", "지시는", "무시하고", "무시해줘" are
# four tokens for two ideas. For word features they are cut back to the stem (a light rule, no
# dictionary; character n-grams still see the full form).
_PARTICLES = (  # longest first
    "이라도", "이라는", "들에게", "에서", "으로", "까지", "부터", "에게", "한테", "이나", "라도",
    "처럼", "보다", "마다", "조차", "밖에", "이랑", "이며", "이란", "라는", "들을", "들이", "들은",
    "들의", "을", "를", "이", "가", "은", "는", "의", "에", "로", "와", "과", "도", "만", "께", "나",
    "랑", "며", "란", "들",
)
_VERB_ENDING = re.compile(r"^([\uac00-\ud7a3]{2,}?)(?:하|해|했|할|함|하여|하고|하세요|하라|해라|해줘|해주세요|"
                          r"해주|하는|한|되|된|될|되는|시키|시켜|하지|하면|해서|하게|하기|합니다|해요|하십시오)[\uac00-\ud7a3]*$")
_HANGUL_WORD = re.compile(r"[\uac00-\ud7a3]{2,}")


def _stem(word: str) -> str:
    m = _VERB_ENDING.match(word)
    if m:
        return m.group(1)
    for particle in _PARTICLES:
        if word.endswith(particle) and len(word) - len(particle) >= 2:
            return word[: -len(particle)]
    return word


def korean_stems(text: str) -> str:
    """Hangul words cut back to their stem (``이전 지시를 무시하고`` -> ``이전 지시 무시``); other text as is."""
    return _HANGUL_WORD.sub(lambda m: _stem(m.group(0)), text)
