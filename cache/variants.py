"""Spelling variants of one question: Korean spacing and one-letter typos, undone before the guards.

"노아의방주는 몇층이었나요?" and "노아의 방주는 몇 층이었나요?" ask the same thing, and so do "How many
poeple were aboard?" and "How many people were aboard?"; to the guards, which compare words, the
first pair has other words and the second a word exchanged in the same frame (a substitution). Before
the guards compare a question with a cached one, :func:`align` gives the question the cached one's
spacing where their letters agree and spells a word as the cached one does when the two differ by one
edit (one letter for Latin words, one jamo for Hangul). What a typo cannot be is left alone: numbers,
words of the guards' own lists (antonyms, negations, time slots, numerals), short words, and a Latin
word whose first letter differs ("Russia" / "Prussia", "typical" / "atypical").
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from cache.lexicon import ANTONYMS, EN_NEGATION, EN_NUMBERS, KO_NUMBERS, KO_PARTICLES, TEMPORAL
from cache.loanwords import same_name

__all__ = ["align", "one_edit"]

_WORD = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*|[\uac00-\ud7a3]+")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_PROTECTED = frozenset(
    {w.casefold() for pair in ANTONYMS for phrase in pair for w in phrase.split()}
    | EN_NEGATION | set(EN_NUMBERS) | set(KO_NUMBERS) | set(TEMPORAL)
)
_MIN_LATIN = 4  # "Iran" / "Iraq" is not a typo: four letters at least, and the same first letter
_MIN_HANGUL = 2  # syllables; one-syllable words are numerals, particles and the like


def _letters(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def respace(text: str, model: str) -> str:
    """``text`` with ``model``'s spacing between Hangul syllables inside every run of letters the two share
    (Korean spacing varies from writer to writer; a Latin word is never split or joined: "no force" against
    "application of force" must not read "n o force")."""
    chars = [(ch, i > 0 and text[i - 1].isspace()) for i, ch in enumerate(text) if not ch.isspace()]
    spaced = [i > 0 and model[i - 1].isspace() for i, ch in enumerate(model) if not ch.isspace()]
    plain = [ch for ch in model if not ch.isspace()]
    matcher = difflib.SequenceMatcher(None, [c for c, _ in chars], plain, autojunk=False)
    space = [before for _, before in chars]
    for block in matcher.get_matching_blocks():
        for k in range(1, block.size):  # a block's first letter keeps its own spacing
            i = block.a + k
            if _HANGUL.match(chars[i - 1][0]) and _HANGUL.match(chars[i][0]):
                space[i] = spaced[block.b + k]
    out = []
    for k, ((ch, _), before) in enumerate(zip(chars, space, strict=True)):
        out.append(" " + ch if before and k else ch)
    return "".join(out)


def _jamo(word: str) -> list[str]:
    out: list[str] = []
    for ch in word:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11_172:
            out += [f"L{code // 588}", f"V{code % 588 // 28}"] + ([f"T{code % 28}"] if code % 28 else [])
        else:
            out.append(ch)
    return out


def one_edit(a: list[str] | str, b: list[str] | str) -> bool:
    """The two sequences differ by exactly one substitution, insertion, deletion or swap of neighbours."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long[k]), len(short))
    return short[i:] == long[i + 1:]


def _eligible(word: str) -> bool:
    if word.casefold() in _PROTECTED:
        return False
    if _HANGUL.match(word):
        return len(word) >= _MIN_HANGUL
    return len(word) >= _MIN_LATIN


_KO_NUMERAL_SYLLABLES = frozenset(k for k in KO_NUMBERS if len(k) == 1)


def _typo(a: str, b: str) -> bool:
    if _HANGUL.match(a) and _HANGUL.match(b):
        numeral = {x for x, y in zip(a, b, strict=False) if x != y} | {y for x, y in zip(a, b, strict=False) if x != y}
        return not numeral & _KO_NUMERAL_SYLLABLES and one_edit(_jamo(a), _jamo(b))  # "세명" / "네명" is a number
    if _HANGUL.match(a) or _HANGUL.match(b):
        return False
    x, y = a.casefold(), b.casefold()
    return x[0] == y[0] and one_edit(x, y)


def respell(text: str, model: str) -> str:
    """``text`` with each word that is one typo away from exactly one word of ``model`` (and from
    nothing else there) spelt as in ``model``."""
    own = {w.casefold() for w in _WORD.findall(text)}
    known = {w.casefold() for w in _WORD.findall(model)}
    theirs = [w for w in dict.fromkeys(_WORD.findall(model)) if w.casefold() not in own and _eligible(w)]

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if not _eligible(word) or word.casefold() in known:
            return word
        near = [w for w in theirs if _typo(word, w)]
        return near[0] if len(near) == 1 else word

    return _WORD.sub(fix, text)


_LATIN_WORD = re.compile(r"[A-Za-z]+")


def _spellings(word: str, particle: str) -> list[str]:
    """How a Hangul word of the cached question may write a name, most likely first: without the
    particle the question puts after the Latin word ("Seven의" against "세븐의": "세븐"), as it stands
    ("간사이", whose last syllable only looks like the particle 이), then without its own particle
    ("토텐코프를": "토텐코프")."""
    out = [word[: -len(particle)]] if particle and word.endswith(particle) and len(word) > len(particle) else []
    out.append(word)
    out += [word[: -len(p)] for p in KO_PARTICLES if word.endswith(p) and len(word) > len(p)]
    return out


def transliterate(text: str, model: str) -> str:
    """``text`` (Korean) with each Latin word that ``model`` (Korean) writes in Hangul, and only one way,
    written as there: "Alexander Haig는 Reagan 정부에서" against "알렉산더 헤이그는 레이건 정부에서" reads
    "알렉산더 Haig는 레이건 정부에서" ("Haig" has one consonant: too little to tell; see
    :mod:`cache.loanwords`)."""
    if not (_HANGUL.search(text) and _HANGUL.search(model)):
        return text
    own = set(_WORD.findall(text))
    theirs = [w for w in dict.fromkeys(_WORD.findall(model)) if _HANGUL.match(w) and w not in own]

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        particle = _PARTICLE_AFTER.match(text, match.end())
        found = {next((s for s in _spellings(w, particle.group(0) if particle else "") if same_name(word, s)), None)
                 for w in theirs} - {None}
        return found.pop() or word if len(found) == 1 else word

    return _LATIN_WORD.sub(fix, text)


_PARTICLE_AFTER = re.compile(r"[\uac00-\ud7a3]+")
_ASIDE = re.compile(r"\s*\([^()]*\)")


def align(question: str, cached: str) -> str:
    """``question`` spaced and spelt like ``cached`` where it differs only by spacing, typos or a name
    in Latin letters that ``cached`` writes in Hangul, and without an aside in parentheses that
    ``cached`` does not have ("증강현실(AR)", "천안함(Cheonan)")."""
    model = _letters(cached)
    text = _letters(question)
    if "(" not in model:
        text = _ASIDE.sub("", text)
    return respell(respace(transliterate(text, model), model), model)
