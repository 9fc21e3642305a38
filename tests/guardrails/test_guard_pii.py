from __future__ import annotations

import time

import pytest

from guardrails.pii import PLACEHOLDERS, PiiDetector, luhn_valid, rrn_valid

DETECTOR = PiiDetector(PLACEHOLDERS)


@pytest.mark.parametrize(("text", "secret", "placeholder"), [
    ("Contact me at jane.doe@example.com please", "jane.doe@example.com", "[EMAIL]"),
    ("메일은 hong.gildong@naver.com 으로 보내주세요", "hong.gildong@naver.com", "[EMAIL]"),
    ("제 번호는 010-1234-5678 입니다", "010-1234-5678", "[PHONE]"),
    ("휴대폰 01098765432 로 연락 주세요", "01098765432", "[PHONE]"),
    ("사무실 02-3456-7890", "02-3456-7890", "[PHONE]"),
    ("Call me on +82 10 2345 6789 tomorrow", "+82 10 2345 6789", "[PHONE]"),
    ("My phone number is (555) 123-4567.", "(555) 123-4567", "[PHONE]"),
    ("주민번호는 900101-1234568 이에요", "900101-1234568", "[RRN]"),
    ("card 4111 1111 1111 1111 expires 12/27", "4111 1111 1111 1111", "[CARD]"),
    ("카드번호 5500-0000-0000-0004 로 결제", "5500-0000-0000-0004", "[CARD]"),
    ("국민은행 계좌 123-45-678901 로 입금", "123-45-678901", "[ACCOUNT]"),
    ("IBAN GB29 NWBK 6016 1331 9268 19 for the transfer", "GB29 NWBK 6016 1331 9268 19", "[ACCOUNT]"),
    ("the server is 192.168.10.200 today", "192.168.10.200", "[IP]"),
    ("접속 IP: 2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::8a2e:370:7334", "[IP]"),
    ("use key sk-proj-Abc123Def456Ghi789Jkl012", "sk-proj-Abc123Def456Ghi789Jkl012", "[SECRET]"),
    ("aws AKIAIOSFODNN7EXAMPLE in config", "AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
    ("비밀번호: Qwerty!2024 입니다", "Qwerty!2024", "[SECRET]"),
])
def test_each_entity_is_redacted_in_both_languages(text: str, secret: str, placeholder: str) -> None:
    redacted, matches = DETECTOR.redact(text)
    assert secret not in redacted
    assert placeholder in redacted
    assert matches


@pytest.mark.parametrize("text", [
    "송장번호: 951023-3847561 / 상태: 배송완료",          # RRN-shaped, bad checksum, no RRN label
    "주문번호 240422-1000234 처리 완료",
    "Order 1234567890123 shipped in 2024 with 1,247 items",  # card-shaped, fails Luhn, no card label
    "Python 3.11.4 was released; version 2.0.1 follows",
    "What is the capital of France?",
    "회의는 14:30에 시작합니다.",
])
def test_lookalikes_are_left_alone(text: str) -> None:
    assert DETECTOR.redact(text)[0] == text


def test_validators() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert rrn_valid("9001011234568") and not rrn_valid("9001011234567")
    assert not rrn_valid("9013011234568")  # month 13


@pytest.mark.parametrize("text", ["a" * 31_000, "a1" * 15_500, "1-" * 15_500, "a@" * 15_500, "x.y " * 7_500])
def test_long_adversarial_runs_stay_linear(text: str) -> None:
    # A quadratic pattern took ~40 s on 32k characters; linear ones take well under a second.
    start = time.perf_counter()
    DETECTOR.redact(text)
    assert time.perf_counter() - start < 5.0
