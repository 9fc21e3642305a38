"""PII and secret detection with validators: Luhn for cards, the checksum for Korean resident
registration numbers, mod-97 for IBANs, octet ranges for IPs. Matches are replaced by typed
placeholders (``[EMAIL]``, ``[PHONE]`` ...) before the text goes anywhere else.

A number that fails its checksum still counts when a labelling keyword stands just before it
(``주민등록번호: ...``, ``card no ...``): post-2020 resident numbers carry no checksum and
documents quote test numbers, while unlabelled digit runs (order ids, serials) stay untouched.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["PLACEHOLDERS", "PiiDetector", "PiiMatch", "luhn_valid", "rrn_valid"]

PLACEHOLDERS: dict[str, str] = {
    "email": "[EMAIL]", "phone": "[PHONE]", "rrn": "[RRN]", "card": "[CARD]",
    "bank_account": "[ACCOUNT]", "ip": "[IP]", "secret": "[SECRET]",
}


@dataclass(frozen=True)
class PiiMatch:
    entity: str
    start: int
    end: int
    score: float


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def rrn_valid(digits: str) -> bool:
    """Korean resident registration number: a plausible birth date and the mod-11 check digit."""
    if len(digits) != 13 or digits[6] not in "12345678":
        return False
    month, day = int(digits[2:4]), int(digits[4:6])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return False
    weights = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
    check = (11 - sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11) % 10
    return check == int(digits[12])


def _iban_valid(text: str) -> bool:
    s = re.sub(r"\s", "", text).upper()
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return len(s) >= 15 and int(number) % 97 == 1


def _entropy(token: str) -> float:
    counts = Counter(token)
    return -sum(c / len(token) * math.log2(c / len(token)) for c in counts.values())


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


_CONTEXT_BEFORE = 32


def _has_context(text: str, start: int, words: re.Pattern[str], before: int = _CONTEXT_BEFORE) -> bool:
    return bool(words.search(text[max(0, start - before):start]))


def _shadow(text: str) -> str:
    """Same length as ``text``: full-width and other compatibility forms folded one character at a time."""
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch) if ord(ch) > 0x7F else ch
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out).replace("·", "-")


_RRN_WORDS = re.compile(r"주민|등록번호|외국인|resident|\brrn\b", re.I)
_NOT_RRN_WORDS = re.compile(r"주문|송장|시리얼|serial|order|코드|code|바코드|제품|관리|번호\s*:\s*$|invoice|tracking|"
                            r"운송장|접수|사업자|법인", re.I)
_CARD_WORDS = re.compile(r"카드|card|신용|체크|credit|debit|visa|master", re.I)
_ACCOUNT_WORDS = re.compile(r"계좌|은행|입금|송금|예금|account|acct|bank|iban|a/c|뱅크|농협|신한|국민|우리|하나|"
                            r"기업|카카오|토스", re.I)
_PHONE_WORDS = re.compile(r"전화|연락|휴대|핸드폰|폰|팩스|문자|tel|phone|mobile|cell|fax|call|contact|\bph\b|"
                          r"phone number|desk|office|messages? to|answering at|registered|reach|text me|sms|"
                          r"whatsapp|dial", re.I)
_PHONE_AFTER = re.compile(r"^[\s,;:-]*(?:office|fax|mobile|cell|home|work|tel|phone)\b", re.I)

_SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bsk-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{30,}"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),
]
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(?:api[_ -]?key|secret(?:[_ -]?key)?|access[_ -]?(?:key|token)|auth[_ -]?token|bearer|token|"
    r"password|passwd|pwd|client[_ -]?secret|비밀번호|패스워드|암호|비번|토큰|시크릿|api\s*키)"
    r"\s*(?:[:=]|is|는|은|:)?\s*['\"]?([^\s'\",;]{6,})"
)
_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=]{32,}")

# Bounded parts and a start anchor keep every pattern linear on long runs (no quadratic rescans).
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-*])[A-Za-z0-9._%+\-*]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,24}")
# An address spelled out: "name [at] host [dot] com", "name at host dot com", "name at host.com".
# A plain "." counts as the dot only inside the host name (no space around it): "He works at
# Halden. It opened" (or "at Halden.It") is prose, a word, " at ", a word and the end of a sentence,
# not an address; so is a plain-dot label in sentence case.
_EMAIL_OBFUSCATED = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}\s{0,3}(?:\[at\]|\(at\)|\{at\}| at |골뱅이)\s{0,3}"
    r"[A-Za-z0-9\-]{1,63}(?:\s{0,3}(?:\[dot\]|\(dot\)|\{dot\}| dot |닷)\s{0,3}[A-Za-z]{2,24}"
    r"|\.(?-i:[a-z]{2,24}|[A-Z]{2,24})){1,4}"
    r"(?![A-Za-z0-9])", re.I)
_RRN = re.compile(r"(?<![\d-])\d{6}\s?[-–]\s?[1-8]\d{6}(?![\d-])|(?<![\d-])\d{6}[1-8]\d{6}(?![\d-])")
_RRN_MASKED = re.compile(r"(?<![\d-])\d{6}\s?-\s?[1-8][*xX●]{6}")
_CARD_MASKED = re.compile(r"(?<![\d-])\d{4}[ -][\d*xX]{4}[ -][\d*xX]{4}[ -]\d{4}(?![\d-])")
_PHONE_MASKED = re.compile(r"(?<![\d-])0\d{1,2}-[\d*xX]{3,4}-[\d*xX]{4}(?![\d-])")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){11,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:\s?[A-Za-z0-9]{4}){2,7}(?:\s?[A-Za-z0-9]{1,4})?\b")
_ACCOUNT = re.compile(r"(?<![\d-])\d{2,6}-\d{2,6}-\d{2,7}(?:-\d{1,3})?(?![\d-])|(?<![\d-])\d{10,14}(?![\d-])")
_KR_PHONE = re.compile(
    r"(?<![\d-])(?:\+82[ -]?(?:0?10|0?2|0?[3-6][1-5]|0?70)|01[016789]|02|0[3-6][1-5]|070|050\d|080|15\d\d|16\d\d|"
    r"18\d\d)[ .-]?\d{3,4}[ .-]?\d{4}(?![\d-])")
_US_PHONE = re.compile(r"(?<![\w+])(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}(?:\s?x\d{1,5})?(?![\w-])")
_INTL_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(0?\d{1,4}\)|\d{1,5})(?:[ .-]?\(0\)\d{0,3})?(?:[ .-]\d{2,7}){1,4}"
    r"(?:\s?x\d{1,5})?(?![\w])"
    r"|(?<![\w+])\+\d{1,3}[ .-]?\d{2,14}(?![\w-])"
    r"|(?<![\w+])\d{7,11}(?![\w-])")
_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?::\d{1,5})?"
                   r"(?![\d.]*\d)")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:])")

Finder = Callable[[str], Iterable[PiiMatch]]


def _find_secrets(text: str) -> Iterable[PiiMatch]:
    for pattern in _SECRET_PATTERNS:
        for m in pattern.finditer(text):
            yield PiiMatch("secret", m.start(), m.end(), 1.0)
    for m in _SECRET_ASSIGNMENT.finditer(text):
        value = m.group(1)
        if any(c.isdigit() for c in value) or len(value) >= 10:
            yield PiiMatch("secret", m.start(1), m.end(1), 0.9)
    for m in _TOKEN.finditer(text):
        token = m.group(0)
        kinds = sum((any(c.islower() for c in token), any(c.isupper() for c in token),
                     any(c.isdigit() for c in token)))
        if kinds == 3 and _entropy(token) >= 4.0:
            yield PiiMatch("secret", m.start(), m.end(), 0.8)


def _find_emails(text: str) -> Iterable[PiiMatch]:
    for pattern in (_EMAIL, _EMAIL_OBFUSCATED):
        for m in pattern.finditer(text):
            yield PiiMatch("email", m.start(), m.end(), 1.0)


def _find_rrn(text: str) -> Iterable[PiiMatch]:
    for m in _RRN.finditer(text):
        digits = _digits(m.group(0))
        if rrn_valid(digits):
            yield PiiMatch("rrn", m.start(), m.end(), 1.0)
        elif _has_context(text, m.start(), _RRN_WORDS, before=160):
            yield PiiMatch("rrn", m.start(), m.end(), 0.7)
        elif _plausible_birth(digits) and not _has_context(text, m.start(), _NOT_RRN_WORDS, before=24):
            # post-2020 numbers carry no checksum: a valid birth date and no "order/serial" label
            yield PiiMatch("rrn", m.start(), m.end(), 0.5)
    for m in _RRN_MASKED.finditer(text):
        yield PiiMatch("rrn", m.start(), m.end(), 0.8)


def _plausible_birth(digits: str) -> bool:
    month, day = int(digits[2:4]), int(digits[4:6])
    return 1 <= month <= 12 and 1 <= day <= 31 and digits[6] in "1234"


def _find_cards(text: str) -> Iterable[PiiMatch]:
    for m in _CARD.finditer(text):
        digits = _digits(m.group(0))
        if not 12 <= len(digits) <= 19:
            continue
        if len(digits) >= 13 and luhn_valid(digits):
            yield PiiMatch("card", m.start(), m.end(), 1.0)
        elif _has_context(text, m.start(), _CARD_WORDS):
            yield PiiMatch("card", m.start(), m.end(), 0.7)
    for m in _CARD_MASKED.finditer(text):
        if _has_context(text, m.start(), _CARD_WORDS):
            yield PiiMatch("card", m.start(), m.end(), 0.7)


def _find_accounts(text: str) -> Iterable[PiiMatch]:
    for m in _IBAN.finditer(text):
        if _iban_valid(m.group(0)):
            yield PiiMatch("bank_account", m.start(), m.end(), 1.0)
    for m in _ACCOUNT.finditer(text):
        if _has_context(text, m.start(), _ACCOUNT_WORDS):
            yield PiiMatch("bank_account", m.start(), m.end(), 0.8)


def _find_phones(text: str) -> Iterable[PiiMatch]:
    for m in _KR_PHONE.finditer(text):
        yield PiiMatch("phone", m.start(), m.end(), 1.0)
    for m in _US_PHONE.finditer(text):
        yield PiiMatch("phone", m.start(), m.end(), 0.9)
    for m in _PHONE_MASKED.finditer(text):
        if sum(c.isdigit() for c in m.group(0)) >= 5:
            yield PiiMatch("phone", m.start(), m.end(), 0.7)
    for m in _INTL_PHONE.finditer(text):
        digits = _digits(m.group(0))
        if not 7 <= len(digits) <= 15 or _RRN.fullmatch(m.group(0)):
            continue
        if (m.group(0).startswith("+") or _has_context(text, m.start(), _PHONE_WORDS)
                or _PHONE_AFTER.match(text, m.end())):
            yield PiiMatch("phone", m.start(), m.end(), 0.8)


def _find_ips(text: str) -> Iterable[PiiMatch]:
    for m in _IPV4.finditer(text):
        yield PiiMatch("ip", m.start(), m.end(), 1.0)
    for m in _IPV6.finditer(text):
        try:
            ipaddress.IPv6Address(m.group(0))
        except ValueError:
            continue
        yield PiiMatch("ip", m.start(), m.end(), 1.0)


# Order matters: earlier finders win overlaps (a secret that looks like a card stays a secret).
_FINDERS: dict[str, Finder] = {
    "secret": _find_secrets, "email": _find_emails, "rrn": _find_rrn, "card": _find_cards,
    "ip": _find_ips, "bank_account": _find_accounts, "phone": _find_phones,
}


class PiiDetector:
    """Finds and redacts the configured entity types."""

    def __init__(self, entities: Iterable[str]) -> None:
        wanted = set(entities)
        unknown = wanted - set(_FINDERS)
        if unknown:
            raise ValueError(f"unknown PII entities: {sorted(unknown)}")
        self._finders = [(name, f) for name, f in _FINDERS.items() if name in wanted]

    def find(self, text: str) -> list[PiiMatch]:
        """Non-overlapping matches, earlier entity types first on overlap, in text order."""
        text = _shadow(text)
        taken: list[PiiMatch] = []
        for _, finder in self._finders:
            for match in sorted(finder(text), key=lambda m: (m.start, -(m.end - m.start))):
                if all(match.end <= t.start or match.start >= t.end for t in taken):
                    taken.append(match)
        return sorted(taken, key=lambda m: m.start)

    def redact(self, text: str) -> tuple[str, list[PiiMatch]]:
        matches = self.find(text)
        parts: list[str] = []
        pos = 0
        for m in matches:
            parts.append(text[pos:m.start])
            parts.append(PLACEHOLDERS[m.entity])
            pos = m.end
        parts.append(text[pos:])
        return "".join(parts), matches
