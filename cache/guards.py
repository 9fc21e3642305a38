"""Precision guards: lexical checks that reject a semantic neighbour which asks something else.

Embeddings place "is X allowed?" next to "is X not allowed?", "2019" next to "2020", "A sued B"
next to "B sued A" and "annual plans" next to "monthly plans" (cosine 0.95-0.99 with e5). Each
guard is cheap, language-aware (English and Korean) and errs on the side of a miss: a rejected
paraphrase costs one generation, a false hit serves a wrong answer.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable
from typing import Literal

from cache.lexicon import (
    ANTONYMS,
    ASK_NOUNS,
    EN_NEGATION,
    EN_NUMBERS,
    EN_STOPWORDS,
    KO_COUNTERS,
    KO_FUSED_COUNTERS,
    KO_LIGHT_PREDICATES,
    KO_NEGATION,
    KO_NUMBERS,
    KO_PARTICLES,
    KO_ROLES,
    KO_STOPWORDS,
    TEMPORAL,
)
from cache.variants import align

__all__ = ["GUARDS", "fired_guards", "question_language", "reject_reason"]

# Digits, Latin words (with an inner apostrophe or hyphen) and Hangul runs are separate tokens, so
# "TCP와" is "TCP" + "와" and "E42" stays one code.
_TOKEN = re.compile(
    r"[0-9]+(?:[.,:/][0-9]+)*|[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*(?:['’-][A-Za-z]+)*|[\uac00-\ud7a3]+|[^\W\d_]+"
)
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_CLOCK = re.compile(r"\d\s*([ap])\.?m\b|\b(last|this|next)\s+(year|month|week|quarter)\b")
_KO_TEMPORAL = {k: v for k, v in TEMPORAL.items() if _HANGUL.match(k)}
_KO_SOLO_PARTICLES = ("", "에", "에는", "의", "를", "은", "는", "가", "도", "만", "로")


def question_language(question: str) -> Literal["en", "ko"]:
    """``ko`` when the question holds Hangul, else ``en``: the language the guards and the per-language
    settings read."""
    return "ko" if _HANGUL.search(question) else "en"


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).replace("’", "'"))


def _lower(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().replace("’", "'")


def _ko_number(word: str, following: str) -> str | None:
    for stem, value in KO_NUMBERS.items():
        if not word.startswith(stem):
            continue
        rest = word[len(stem) :]
        fused = KO_FUSED_COUNTERS if len(stem) == 1 else KO_COUNTERS
        if rest.startswith(fused) or (rest == "" and following.startswith(KO_COUNTERS)):
            return value
        if len(stem) > 1 and rest in _KO_SOLO_PARTICLES:
            return value
    return None


def _numbers(text: str) -> set[str]:
    found: set[str] = set()
    words = [w.casefold() for w in _tokens(text)]
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word[0].isdigit():
            found.add(word.replace(",", ""))
        elif word in EN_NUMBERS:
            found.add(EN_NUMBERS[word])
        elif "-" in word:  # "three-planet", "two-thirds"
            found |= {EN_NUMBERS[part] for part in word.split("-") if part in EN_NUMBERS}
        elif _HANGUL.match(word) and (value := _ko_number(word, following)) is not None:
            found.add(value)
    return found


def _temporal(text: str) -> set[str]:
    lowered = _lower(text)
    found = {TEMPORAL[w] for w in _tokens(lowered) if w in TEMPORAL}
    found |= {token for name, token in _KO_TEMPORAL.items() if name in lowered}
    for match in _CLOCK.finditer(lowered):
        found.add(match.group(1) + "m" if match.group(1) else f"{match.group(2)}-{match.group(3)}")
    return found


def _negated(text: str) -> bool:
    lowered = _lower(text)
    if set(_tokens(lowered)) & EN_NEGATION or "n't" in lowered:
        return True
    return any(marker in f" {lowered} " for marker in KO_NEGATION)


_ANTONYM_WORDS = {word for pair in ANTONYMS for word in pair}
_KO_ANTONYM_WORDS = sorted(w for w in _ANTONYM_WORDS if _HANGUL.search(w))
_EN_ANTONYM = re.compile(
    r"(?<![\w-])("
    + "|".join(re.escape(w) for w in sorted(_ANTONYM_WORDS - set(_KO_ANTONYM_WORDS), key=len, reverse=True))
    + r")(?![\w-])"
)


def _antonym_words(text: str) -> set[str]:
    lowered = _lower(text)
    return set(_EN_ANTONYM.findall(lowered)) | {w for w in _KO_ANTONYM_WORDS if w in lowered}


def _antonym_flip(query: str, candidate: str) -> bool:
    q, c = _antonym_words(query), _antonym_words(candidate)
    for a, b in ANTONYMS:
        qa, qb, ca, cb = a in q, b in q, a in c, b in c
        if (qa and not qb and cb and not ca) or (qb and not qa and ca and not cb):
            return True
    return False


def _entities(text: str) -> list[str]:
    """Names, codes and acronyms in order: capitalised words past the first (not "I"), words with
    inner capitals or digits, and Latin words inside Korean text."""
    words = _tokens(text)
    korean = bool(_HANGUL.search(text))
    found: list[str] = []
    for i, word in enumerate(words):
        if _HANGUL.match(word) or word == "I" or word.startswith("I'") or word[0].isdigit():
            continue  # a number is the number guard's, not a name
        base = re.sub(r"'s$", "", word)
        named = (i > 0 and base[:1].isupper()) or any(ch.isupper() for ch in base[1:]) or korean
        coded = any(ch.isdigit() for ch in base) and any(ch.isalpha() for ch in base)
        if (named or coded) and base.casefold() not in found:
            found.append(base.casefold())
    return found


def _words_of(text: str) -> set[str]:
    return {re.sub(r"'s$", "", w.casefold()) for w in _tokens(text)}


def _entity_change(query: str, candidate: str) -> bool:
    """A name on one side that the other side does not contain at all (in any case: "Tesla death
    year?" names Tesla as its first word, where it does not read as a name)."""
    return bool(set(_entities(query)) - _words_of(candidate) or set(_entities(candidate)) - _words_of(query))


def _entity_swap(query: str, candidate: str) -> bool:
    eq, ec = _entities(query), _entities(candidate)
    return len(eq) >= 2 and set(eq) == set(ec) and eq != ec


def _ko_stem(word: str) -> str:
    for particle in KO_PARTICLES:
        if word.endswith(particle) and len(word) > len(particle) + 1:
            return word[: -len(particle)]
    return word


def _ko_roles(text: str) -> dict[str, str]:
    """Noun -> case role, from the particle fused to it ("철수가") or following a Latin word ("PDF를")."""
    roles: dict[str, str] = {}
    tokens = _tokens(text)
    for i, word in enumerate(tokens):
        if not _HANGUL.match(word):
            continue
        after_latin = i > 0 and not _HANGUL.match(tokens[i - 1]) and tokens[i - 1].isalnum()
        for role, particles in KO_ROLES:
            if after_latin and word in particles:
                roles.setdefault(tokens[i - 1].casefold(), role)
                break
            particle = next((p for p in particles if word.endswith(p) and len(word) > len(p) + 1), None)
            if particle is not None:
                roles.setdefault(word[: -len(particle)], role)
                break
    return roles


def _ko_role_swap(query: str, candidate: str) -> bool:
    rq, rc = _ko_roles(query), _ko_roles(candidate)
    return sum(1 for stem in rq if stem in rc and rq[stem] != rc[stem]) >= 2


def _canonical(word: str) -> str:
    """A crude stem: Korean words lose their particle and keep two syllables, English words a plural
    or verb suffix, so inflections of one word compare equal."""
    if _HANGUL.match(word):
        return _ko_stem(word)[:2]
    for suffix in ("ed", "es", "s"):  # "-ing" stays: "developing" and "developed" countries differ
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word.removesuffix("'s")


def _ask_noun(word: str) -> str | None:
    """What a noun restating a question word asks ("시기는" -> time, "count" -> count), or None."""
    if word in ASK_NOUNS:
        return ASK_NOUNS[word]
    if _HANGUL.match(word):
        stem = next((word[: -len(p)] for p in KO_PARTICLES if word.endswith(p) and len(word) > len(p)), word)
        return ASK_NOUNS.get(stem)
    return None


def _is_content(word: str) -> bool:
    if _ask_noun(word) is not None:
        return False
    if _HANGUL.match(word):
        return word not in KO_STOPWORDS and _ko_stem(word) not in KO_STOPWORDS and word not in KO_LIGHT_PREDICATES
    return word not in EN_STOPWORDS


def _content(text: str) -> list[str]:
    return [_canonical(w) for w in _tokens(_lower(text)) if _is_content(w)]


def _substitution(query: str, candidate: str) -> bool:
    """The same sentence frame with one short span of content exchanged, added or dropped ("annual"
    -> "monthly", "서울의" -> "부산의", "reset my password" -> "... on the website"): paraphrases
    rephrase the frame, near-misses keep it and change one slot."""
    tq, tc = _tokens(_lower(query)), _tokens(_lower(candidate))
    sq, sc = [_canonical(w) for w in tq], [_canonical(w) for w in tc]
    matcher = difflib.SequenceMatcher(None, sq, sc, autojunk=False)
    changed = [
        op
        for op in matcher.get_opcodes()
        if op[0] != "equal" and any(_is_content(w) for w in tq[op[1] : op[2]] + tc[op[3] : op[4]])
    ]
    if len(changed) != 1:
        return False
    tag, i1, i2, j1, j2 = changed[0]
    removed, added = tq[i1:i2], tc[j1:j2]
    slot = max(len(removed), len(added)) <= 3 and (
        tag != "replace" or (any(map(_is_content, removed)) and any(map(_is_content, added)))
    )
    same = sum(block.size for block in matcher.get_matching_blocks())
    return slot and same >= 0.5 * max(len(sq), len(sc))


def _word_order_swap(query: str, candidate: str) -> bool:
    """Two content words trade places ("dog chases cat" vs "cat chases dog"); a phrase that merely
    moves ("delete my account permanently" vs "permanently delete my account") is not a swap."""
    cq, cc = _content(query), _content(candidate)
    if len(cq) != len(cc) or sorted(cq) != sorted(cc):
        return False
    moved = [i for i, (x, y) in enumerate(zip(cq, cc, strict=True)) if x != y]
    return len(moved) == 2 and cq[moved[0]] == cc[moved[1]] and cq[moved[1]] == cc[moved[0]]


# What a question asks for: "which island" and "how much" about the same ferry are different
# questions however close their embeddings (e5 puts them at 0.95).
_EN_ASKS = (
    ("how much", "amount"), ("how many", "count"), ("how long", "duration"), ("how often", "frequency"),
    ("how far", "distance"), ("how old", "age"), ("who", "person"), ("whom", "person"), ("whose", "person"),
    ("when", "time"), ("what time", "time"), ("what year", "time"), ("which year", "time"), ("what date", "time"),
    ("where", "place"), ("why", "reason"),
)  # "what" and "which" ask for a thing alike ("What is the capital?" = "Which city is the capital?")
_KO_ASKS = (
    ("얼마", "amount"), ("몇", "count"), ("누구", "person"), ("누가", "person"), ("언제", "time"),
    ("어디", "place"), ("왜", "reason"),
)


_DURATION = re.compile(
    r"\bhow many (?:seconds|minutes|hours|days|weeks|months|years)\b"
    r"|몇\s*(?:초|분|시간|일|주|달|개월|년)\s*(?:동안|이나|정도|걸)|얼마나\s*(?:오래|걸리|걸려)"
)


_RANK = re.compile(
    r"\bwhere (?:did|does|do|is|was|were|will)\b.*\b(?:rank|ranked|place|placed|finish|finished)\b"
    r"|몇\s*(?:위|등)"
)


def _asks(text: str) -> frozenset[str]:
    lowered = f" {_lower(text)} "
    found = {kind for word, kind in _EN_ASKS if re.search(rf"\b{word}\b", lowered)}
    found |= {kind for word, kind in _KO_ASKS if word in lowered}
    if not found:  # a short question without a question word may name what it asks: "건설 시기?", "castle count?"
        found = {kind for word in _tokens(lowered) if (kind := _ask_noun(word)) is not None}
    if "몇 년에" in lowered or "몇년에" in lowered:  # "in what year", not "how many"
        found.add("time")
        found.discard("count")
    if _DURATION.search(lowered):  # "how many minutes", "몇 분 동안", "얼마나 걸리": how long
        found.add("duration")
        found -= {"count", "amount"}
    if _RANK.search(lowered):  # "where did X rank", "몇 위": a rank, not a place or a count
        found.add("rank")
        found -= {"place", "count"}
    if "amount" in found or "count" in found or "duration" in found:
        found.discard("time")  # "how long ... what time" style overlaps are one ask
    return frozenset(found)


# a question that asks "what" and names a cause asks a reason too: "What makes X controversial?" is "Why is X ...?"
_WHAT = re.compile(r"\b(?:what|which)\b|무엇|무슨|어떤|뭐")
_CAUSE = re.compile(r"\b(?:make|makes|made|cause|causes|caused|lead|leads|led|because|result|results|resulted)\b"
                    r"|때문|탓|원인|이유|계기|까닭|인해|으로 인한")


def _asks_differ(query: str, candidate: str) -> bool:
    """Both questions say what they ask for, and not the same thing. A question with no question word
    ("Tesla death year?", "승리 본명?") asks what its words name and is left to the other guards; a bare "what"
    (무엇) asks for a thing, so against a reason it differs unless it names a cause."""
    q, c = _asks(query), _asks(candidate)
    if {frozenset(), frozenset({"reason"})} == {q, c}:
        bare = _lower(candidate if not c else query)
        return bool(_WHAT.search(bare)) and not _CAUSE.search(bare)
    return bool(q and c and q != c)


_EN_COUNTED = re.compile(r"\bhow many ([a-z][a-z'-]*)")
_KO_COUNTED = re.compile(r"몇\s*([\uac00-\ud7a3])")


def _counted(text: str) -> str | None:
    """What a "how many" question counts: the noun after "how many" (singular), or the counter after 몇."""
    lowered = _lower(text)
    if found := _EN_COUNTED.search(lowered):
        return found.group(1).removesuffix("s")
    if found := _KO_COUNTED.search(lowered):
        return found.group(1)
    return None


def _count_change(query: str, candidate: str) -> bool:
    """Both count, and count different things: "How many eggs can one carton hold?" against "How many
    cartons can one crate hold?"; "노래를 몇 곡" against "재생목록을 몇 개"."""
    q, c = _counted(query), _counted(candidate)
    return q is not None and c is not None and q != c


_WHOSE = re.compile(r"(?:누구의|\bwhose)\s*([\w'-]+)")
_OWNED = re.compile(r"([\w-]+?)(?:의|'s)\s+([\w'-]+)")


def _whose(text: str) -> tuple[set[str], set[str]]:
    """The nouns asked of as someone's ("누구의 제자", "whose student") and the nouns said to be a named
    owner's ("임세영의 제자", "Tesla's student"), stemmed."""
    lowered = _lower(text)
    asked = {_canonical(m.group(1)) for m in _WHOSE.finditer(lowered)}
    owned = {_canonical(m.group(2)) for m in _OWNED.finditer(lowered) if m.group(1) not in ("누구", "whose")}
    return asked, owned


def _whose_swap(query: str, candidate: str) -> bool:
    """One asks whose N someone is and the other who someone's N is: the same two people, the other way
    round ("임세영은 누구의 제자인가요" / "임세영의 제자는 누구인가요", "Whose student was X?" / "Who was X's
    student?")."""
    aq, oq = _whose(query)
    ac, oc = _whose(candidate)
    return bool(aq & oc) or bool(ac & oq)


GUARDS: dict[str, Callable[[str, str], bool]] = {
    "asks": _asks_differ,
    "counted": _count_change,
    "number": lambda q, c: _numbers(q) != _numbers(c),
    "date": lambda q, c: _temporal(q) != _temporal(c),
    "negation": lambda q, c: _negated(q) != _negated(c),
    "antonym": _antonym_flip,
    "entity_swap": _entity_swap,
    "entity": _entity_change,
    "role_swap": _ko_role_swap,
    "whose": _whose_swap,
    "word_order": _word_order_swap,
    "substitution": _substitution,
    "language": lambda q, c: question_language(q) != question_language(c),
}


def reject_reason(query: str, candidate: str, skip: frozenset[str] = frozenset()) -> str | None:
    """The name of the first guard (not in ``skip``) that tells the two questions apart, or None. The
    query is first spaced and spelt like the candidate where it differs only by spacing or a typo
    (:func:`cache.variants.align`)."""
    query = align(query, candidate)
    for name, differs in GUARDS.items():
        if name not in skip and differs(query, candidate):
            return name
    return None


def fired_guards(query: str, candidate: str) -> frozenset[str]:
    """Every guard that tells the two questions apart (for evaluating guard choices)."""
    query = align(query, candidate)
    return frozenset(name for name, differs in GUARDS.items() if differs(query, candidate))
