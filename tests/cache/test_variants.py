"""Spacing and one-edit typos are undone before the guards; what a typo cannot be stays a near miss."""

from __future__ import annotations

import pytest

from cache.guards import reject_reason
from cache.loanwords import same_name
from cache.variants import align, one_edit


@pytest.mark.parametrize(
    ("question", "cached", "expected"),
    [
        ("노아의방주는 몇층이었나요?", "노아의 방주는 몇 층이었나요?", "노아의 방주는 몇 층이었나요?"),
        ("금강산의여름이름은무엇인가요?", "금강산의 여름 이름은 무엇인가요?", "금강산의 여름 이름은 무엇인가요?"),
        ("금강산의 여름 이룸은 무엇인가요?", "금강산의 여름 이름은 무엇인가요?", "금강산의 여름 이름은 무엇인가요?"),
        ("How many poeple were aboard?", "How many people were aboard?", "How many people were aboard?"),
        ("Who was the frist director?", "Who was the first director?", "Who was the frist director?"),  # a numeral
        ("When did Russia join the league?", "When did Prussia join the league?", "When did Russia join the league?"),
        ("Is it typical?", "Is it atypical?", "Is it typical?"),
        ("세명이 탈 수 있나요?", "네명이 탈 수 있나요?", "세명이 탈 수 있나요?"),
        # a Latin word is never split or joined by the cached question's spacing (Korean spacing only)
        ("What kind of motion required no force at all?", "What kind of motion required a continued application of "
         "force?", "What kind of motion required no force at all?"),
        ("How fast does light travel?", "How quickly does light travel?", "How fast does light travel?"),
        ("Which feature do coastal beroids not have?", "What do coastal beroids lack?",
         "Which feature do coastal beroids not have?"),
    ],
)
def test_align_undoes_spacing_and_typos_only(question: str, cached: str, expected: str) -> None:
    assert align(question, cached) == expected


def test_one_edit_counts_substitutions_insertions_deletions_and_swaps() -> None:
    assert one_edit("people", "poeple") and one_edit("recent", "recnt") and one_edit("basin", "basins")
    assert not one_edit("people", "people") and not one_edit("immigration", "emigration")


@pytest.mark.parametrize(
    ("query", "candidate"),
    [
        ("노아의방주는 몇층이었나요?", "노아의 방주는 몇 층이었나요?"),
        ("How many speceis of ctenophores exist?", "How many species of ctenophores exist?"),
        ("박형식은 언제 대뷔했나요?", "박형식은 언제 데뷔했나요?"),
    ],
)
def test_spacing_and_typo_paraphrases_pass_the_guards(query: str, candidate: str) -> None:
    assert reject_reason(query, candidate) is None


@pytest.mark.parametrize(
    ("query", "candidate", "guard"),
    [
        ("닉슨은 몇년에 연방상원의원에 당선되었나요?", "닉슨은 몇 년에 연방 하원 의원에 당선되었나요?", "antonym"),
        ("How many people were aboard the AS-208 test flight?", "How many poeple were aboard the AS-206 test flight?",
         "number"),
        ("When did Russia join the league?", "When did Prussia join the league?", "substitution"),
        ("세명이 탈 수 있나요?", "네명이 탈 수 있나요?", "number"),
        ("VR(가상현실) 연구의 시초는?", "AR(증강현실) 연구의 시초는?", "substitution"),  # asides on both
        ("What kind of motion required no force at all according to Aristotle?",
         "What kind of motion required a continued application of force according to Aristotle?", "negation"),
    ],
)
def test_near_misses_spelt_differently_are_still_refused(query: str, candidate: str, guard: str) -> None:
    assert reject_reason(query, candidate, frozenset({"entity"})) == guard


@pytest.mark.parametrize(
    ("latin", "hangul", "same"),
    [
        ("Alexander", "알렉산더", True), ("Reagan", "레이건", True), ("Xbox", "엑스박스", True),
        ("Washington", "워싱턴", True), ("nightclub", "나이트클럽", True),
        ("Nixon", "레이건", False), ("Ford", "닉슨", False),
        ("Haig", "헤이그", False),  # one consonant: too little to tell a name by
    ],
)
def test_a_latin_name_matches_its_hangul_spelling_by_consonants(latin: str, hangul: str, same: bool) -> None:
    assert same_name(latin, hangul) is same


def test_a_latin_name_is_written_as_the_cached_question_writes_it() -> None:
    cached = "레이건 정부의 국무장관은 누구였나요?"
    assert align("Reagan 정부의 국무장관은 누구였나요?", cached) == cached
    assert reject_reason("Reagan 정부의 국무장관은 누구였나요?", cached, frozenset({"entity"})) is None
    # another name stays itself, and the guards see it exchanged
    assert align("Nixon 정부의 국무장관은 누구였나요?", cached) == "Nixon 정부의 국무장관은 누구였나요?"
    assert reject_reason("Nixon 정부의 국무장관은 누구였나요?", cached, frozenset({"entity"})) == "substitution"


@pytest.mark.parametrize(
    ("question", "cached"),
    [
        ("영화 Seven의 감독은 누구인가요?", "영화 세븐의 감독은 누구인가요?"),  # the question's particle, not 세븐의의
        ("Kansai 공항은 언제 개항했나요?", "간사이 공항은 언제 개항했나요?"),  # 간사이 is no 간사 + 이
        ("Totenkopf 사단은 언제 창설되었나요?", "토텐코프 사단은 언제 창설되었나요?"),
    ],
)
def test_a_latin_name_takes_the_cached_spelling_without_particles(question: str, cached: str) -> None:
    assert align(question, cached) == cached
