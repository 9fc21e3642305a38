"""Sentence-respecting chunks, overlap and stable content-derived ids."""

from __future__ import annotations

from itertools import pairwise

import pytest

from retriever.chunking import chunk_document, chunk_text
from retriever.text import split_sentences

SENTENCES = [f"Sentence number {i} talks about topic {i}." for i in range(30)]
TEXT = " ".join(SENTENCES)


def test_chunks_hold_whole_sentences_within_size() -> None:
    chunks = chunk_text(TEXT, size=200, overlap=50)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk) <= 200
        assert all(s in SENTENCES for s in split_sentences(chunk))


def test_every_sentence_is_kept_in_order() -> None:
    chunks = chunk_text(TEXT, size=200, overlap=50)
    seen = [s for c in chunks for s in split_sentences(c)]
    assert list(dict.fromkeys(seen)) == SENTENCES


def test_neighbouring_chunks_overlap_by_whole_sentences() -> None:
    chunks = chunk_text(TEXT, size=200, overlap=50)
    for left, right in pairwise(chunks):
        shared = set(split_sentences(left)) & set(split_sentences(right))
        assert shared and sum(len(s) for s in shared) <= 50 + len(shared)
    assert not set(split_sentences(chunk_text(TEXT, size=200, overlap=0)[0])) & set(
        split_sentences(chunk_text(TEXT, size=200, overlap=0)[1]))


def test_korean_sentences_are_respected() -> None:
    text = "한글은 세종대왕이 창제하였다. 훈민정음으로 반포되었다. 자음과 모음으로 이루어진 소리글자이다. " * 5
    for chunk in chunk_text(text, size=60, overlap=20):
        assert chunk.endswith("다.")


def test_overlong_sentence_and_unbroken_text_are_cut() -> None:
    assert all(len(c) <= 100 for c in chunk_text("word " * 500, size=100, overlap=10))
    unbroken = chunk_text("x" * 1050, size=100, overlap=10)
    assert [len(c) for c in unbroken] == [100] * 10 + [50]


def test_ids_are_stable_and_change_only_with_content() -> None:
    first = chunk_document("doc-1", TEXT, size=200, overlap=50)
    again = chunk_document("doc-1", TEXT, size=200, overlap=50)
    assert [c.id for c in first] == [c.id for c in again]
    edited = chunk_document("doc-1", TEXT.replace("topic 29", "topic twenty-nine"), size=200, overlap=50)
    assert [c.id for c in edited][:-1] == [c.id for c in first][:-1]
    assert edited[-1].id != first[-1].id
    other_doc = chunk_document("doc-2", TEXT, size=200, overlap=50)
    assert not {c.id for c in other_doc} & {c.id for c in first}


def test_repeated_content_gets_distinct_ids() -> None:
    chunks = chunk_document("d", "Same words here. " * 40, size=60, overlap=0)
    assert len({c.id for c in chunks}) == len(chunks)


def test_overlap_must_be_smaller_than_size() -> None:
    with pytest.raises(ValueError):
        chunk_text(TEXT, size=100, overlap=100)
