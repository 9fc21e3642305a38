"""Language detection and sentence splitting for English and Korean text: plain rules, no model, shared by
the pieces (the retriever's analyzers, the generator's answer sentences, the gateway's prompt choice)."""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["Language", "detect_language", "hangul_ratio", "split_sentences"]

Language = Literal["ko", "en"]

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_KOREAN_SHARE = 0.3


def hangul_ratio(text: str) -> float:
    """Share of letters that are Hangul (0.0 when the text has no letters)."""
    letters = len(_LETTER.findall(text))
    return len(_HANGUL.findall(text)) / letters if letters else 0.0


def detect_language(text: str) -> Language:
    """'ko' when Hangul makes up a fair share of the letters, else 'en'."""
    return "ko" if hangul_ratio(text) >= _KOREAN_SHARE else "en"


_SENTENCE_END = re.compile(
    r"(?<=[.!?。？！][\"'”’)\]])\s+|(?<=[.!?。？！])\s+|\n\s*\n"
    r"|(?<=[\uac00-\ud7a3][다요죠까])\s+(?=그래서|그리고|그러나|하지만|또한|따라서|그런데|그러므로)"
)


def split_sentences(text: str) -> list[str]:
    """Sentences of English or Korean text (punctuation, blank lines, Korean final endings)."""
    parts = _SENTENCE_END.split(text)
    return [p.strip() for p in parts if p and p.strip()]
