"""The spelled-out e-mail pattern redacts addresses, not prose: "<word> at <Place>. <Next sentence>"
once became ``[EMAIL]`` in answers. Each prose case has an address control that must still be redacted."""

from __future__ import annotations

import pytest

from guardrails.pii import PiiDetector

DETECTOR = PiiDetector(["email"])

PROSE = [
    "The Aurora Lighthouse stands at Halden. It was built in 1871.",
    "Copperleaf tea is dried at low heat. Then it rests for a week.",
    "The library opened at Seoul. Its first director was Kim.",
    "She arrived at Pier.Then the ferry left.",
    "They met at noon. We left at dawn. It rained.",
]

ADDRESSES = [
    ("Write to john at example dot com today.", "Write to [EMAIL] today."),
    ("john [at] example [dot] com", "[EMAIL]"),
    ("Mail john at example.com please.", "Mail [EMAIL] please."),
    ("hong 골뱅이 naver 닷 com", "[EMAIL]"),
    ("jane.doe@example.org wrote", "[EMAIL] wrote"),
    ("reach kim at mail.example.co.kr now", "reach [EMAIL] now"),
]


@pytest.mark.parametrize("text", PROSE)
def test_prose_with_at_and_a_sentence_end_is_not_an_address(text: str) -> None:
    assert DETECTOR.redact(text) == (text, [])


@pytest.mark.parametrize(("text", "redacted"), ADDRESSES)
def test_spelled_out_and_plain_addresses_are_still_redacted(text: str, redacted: str) -> None:
    assert DETECTOR.redact(text)[0] == redacted
