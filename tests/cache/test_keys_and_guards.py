"""Unit tests: scopes, keys, eligibility and the precision guards (pure logic, no model)."""

from __future__ import annotations

import pytest

from cache import CacheScope, eligibility, exact_key, normalize_question, partition_key
from cache.guards import reject_reason
from services.contracts import GenerationParams
from tests.cache.conftest import scope


def test_normalization_ignores_case_spacing_and_trailing_punctuation() -> None:
    assert normalize_question("  What IS   the refund policy?? ") == normalize_question("what is the refund policy")
    assert normalize_question("연간 요금제의  환불 정책은?") == "연간요금제의환불정책은"
    assert normalize_question("노아의방주는 몇층이었나요?") == normalize_question("노아의 방주는 몇 층이었나요?")
    assert normalize_question("2003년 8월 TCP 설정") == "2003년 8월 tcp 설정"  # only between two Hangul syllables


def test_every_scope_field_changes_the_key() -> None:
    base = scope()
    variants = [
        scope(tenant="other"),
        scope(epoch="e2"),
        scope(collection="faq"),
        scope(policy_version="p2"),
        scope(model="m2"),
        scope(params=GenerationParams(max_tokens=100)),
        scope(params=GenerationParams(temperature=0.2)),
        scope(params=GenerationParams(temperature=0.2, seed=7)),  # greedy reads no seed: see key_params
        scope(params=GenerationParams(stop=("\n",))),
    ]
    keys = {exact_key(s, "q") for s in [base, *variants]}
    partitions = {partition_key(s) for s in [base, *variants]}
    assert len(keys) == len(partitions) == len(variants) + 1


def test_keys_reveal_neither_tenant_nor_question() -> None:
    s = CacheScope("tenant-acme", "secret-collection", "e1", "p1", "m1")
    for key in (exact_key(s, "What is the refund policy?"), partition_key(s)):
        assert "acme" not in key and "secret" not in key and "refund" not in key
        assert all(c in "0123456789abcdef" for c in key)


def test_tenant_and_collection_cannot_collide_by_concatenation() -> None:
    assert partition_key(scope(tenant="ab", collection="c")) != partition_key(scope(tenant="a", collection="bc"))


@pytest.mark.parametrize(
    ("header", "read", "write"),
    [
        (None, True, True),
        ("no-cache", False, True),
        ("no-store", True, False),
        ("No-Cache, no-store", False, False),
        ("max-age=0", True, True),
    ],
)
def test_cache_control(header: str | None, read: bool, write: bool) -> None:
    e = eligibility(GenerationParams(), header, max_temperature=0.0)
    assert (e.read, e.write) == (read, write)


def test_sampled_requests_are_not_cached() -> None:
    e = eligibility(GenerationParams(temperature=0.7), None, max_temperature=0.0)
    assert not e.read and not e.write


@pytest.mark.parametrize(
    ("query", "candidate", "guard"),
    [
        ("Which drugs are not safe in pregnancy?", "Which drugs are safe in pregnancy?", "negation"),
        ("환불받을 수 없는 경우는 언제인가요?", "환불받을 수 있는 경우는 언제인가요?", "negation"),
        ("What was the revenue in 2023?", "What was the revenue in 2022?", "number"),
        ("티켓 세 장 가격은 얼마인가요?", "티켓 두 장 가격은 얼마인가요?", "number"),
        ("Is the office open on Sunday?", "Is the office open on Saturday?", "date"),
        ("What is the minimum upload size?", "What is the maximum upload size?", "antonym"),
        ("Did Beats acquire Apple?", "Did Apple acquire Beats?", "entity_swap"),
        ("Who is the CEO of Google?", "Who is the CEO of Microsoft?", "entity"),
        ("영희가 철수에게 보낸 편지는?", "철수가 영희에게 보낸 편지는?", "role_swap"),
        ("Does the cat chase the dog in the story?", "Does the dog chase the cat in the story?", "word_order"),
        ("What is the refund policy for monthly plans?", "What is the refund policy for annual plans?", "substitution"),
        ("부산의 인구는 얼마인가요?", "서울의 인구는 얼마인가요?", "substitution"),
        ("How do I reset my password on the website?", "How do I reset my password?", "substitution"),
        ("연간 요금제의 환불 정책은 무엇인가요?", "What is the refund policy for annual plans?", "language"),
        ("How many cartons can one crate hold?", "How many eggs can one carton hold?", "counted"),
        ("계정 하나에 재생목록을 몇 개 만들 수 있나요?", "재생목록 하나에 노래를 몇 곡 넣을 수 있나요?", "counted"),
        ("금강산을 겨울에는 뭐라고 부르나요?", "금강산을 여름에는 뭐라고 부르나요?", "date"),
        ("When did the first outdoor market open?", "When did the first indoor market open?", "antonym"),
        ("닉슨은 몇년에 연방상원의원에 당선되었나요?", "닉슨은 몇 년에 연방 하원 의원에 당선되었나요?", "antonym"),
        ("Who led the committee set up by Seaman?", "When was the committee set up by Seaman established?", "asks"),
        ("How many years did the war last?", "When did the war start?", "asks"),
        ("전화기를 발명한 사람은 누구인가요?", "페니실린을 발견한 사람은 누구인가요?", "substitution"),
        # another event of one subject: the closing light predicates (했나요 / 인가요) are no content slot
        ("그 극단은 처음 창단된 게 언제인가요?", "그 극단은 처음 공연을 언제 했나요?", "substitution"),
        ("그 다리의 건설 비용은?", "그 다리는 언제 건설되었나요?", "asks"),  # an ask noun: amount, not time
        ("bridge opening cost?", "When did the bridge open?", "asks"),
        ("박지성의 후배는 누구인가요?", "박지성은 누구의 후배인가요?", "whose"),  # the same two people, reversed
        ("Who was Tesla's apprentice?", "Whose apprentice was Tesla?", "whose"),
        ("그 선수는 왜 올림픽에 나갔나요?", "그 선수는 왜 올림픽에 나가지 못했나요?", "negation"),  # -지 못하다
        ("When was the two-seat version introduced?", "When was the three-seat version introduced?", "number"),
        ("Kenya CPI rank 2012?", "What score did Kenya get on the CPI in 2012?", "asks"),  # ask nouns: rank, score
        ("케냐 2012년 부패인식지수 점수?", "케냐는 2012년 부패인식지수에서 몇 위였나요?", "asks"),
        # a reason against a bare "what" that names no cause: why it was predicted, not which ones were
        ("역산으로 천문 현상을 예측한 이유는 무엇인가요?", "역산으로 예측한 대표적인 천문 현상은 무엇인가요?", "asks"),
        ("Why did the company enter the market?", "Which market did the company enter?", "asks"),
    ],
)
def test_guards_reject_near_misses(query: str, candidate: str, guard: str) -> None:
    assert reject_reason(query, candidate) == guard


@pytest.mark.parametrize(
    ("query", "candidate"),
    [
        ("How do refunds work for yearly subscriptions?", "What is the refund policy for annual plans?"),
        ("Which city is Australia's capital?", "What is the capital of Australia?"),
        ("How can I permanently delete my account?", "How do I delete my account permanently?"),
        ("바나나 하나에는 칼로리가 얼마나 들어 있나요?", "바나나 한 개의 칼로리는 얼마인가요?"),
        ("비밀번호 재설정 방법을 알려주세요.", "비밀번호를 재설정하려면 어떻게 해야 하나요?"),
        ("E42 오류 코드의 의미가 뭔가요?", "오류 코드 E42는 무슨 뜻인가요?"),
        ("Tesla death year?", "What year did Tesla die?"),  # a name as the first word is still the name
        ("박형식 데뷔일?", "박형식은 언제 데뷔했나요?"),  # no question word: it asks what its words name
        ("In what year was the Maastricht Treaty signed?", "When was the Maastricht Treaty signed?"),
        ("How many eggs fit in a single carton?", "How many eggs can one carton hold?"),
        ("I was wondering where Friedrich Ratzel was born.", "Where was Friedrich Ratzel born?"),  # chatty filler
        ("증강현실(AR) 연구를 처음 시작한 사람은?", "증강현실 연구를 처음 시작한 사람은?"),  # an aside
        ("반숙 달걀은 몇 분 동안 삶아야 하나요?", "달걀을 반숙으로 삶으려면 얼마나 걸리나요?"),  # both ask how long
        ("페니실린은 누가 발견했나요?", "페니실린을 발견한 사람은 누구인가요?"),  # "the person who" asks who
        ("그 극단이 처음 공연한 게 언제인가요?", "그 극단은 처음 공연을 언제 했나요?"),  # light predicates differ
        ("그 다리 건설 시기?", "그 다리는 언제 건설되었나요?"),  # an ask noun restates 언제
        ("bridge open date?", "When did the bridge open?"),
        ("그 화가는 결국 누구의 제자로 들어갔나요?", "그 화가는 누구의 제자가 되었나요?"),  # both ask whose
        ("그 선수가 올림픽에 출전할 수 없었던 이유는?", "그 선수는 왜 올림픽에 나가지 못했나요?"),  # both negated
        ("MBC 2015년 시청률?", "2015년 MBC의 시청률은 얼마였나요?"),  # a year is no name: no entity swap
        ("Kenya CPI rank 2012?", "Where did Kenya rank on the CPI in 2012?"),  # "where did X rank" asks a rank
        ("케냐 2012년 부패인식지수 순위?", "케냐는 2012년 부패인식지수에서 몇 위였나요?"),  # 몇 위: a rank
        ("What makes Islamism controversial?", "Why is Islamism a controversial concept?"),  # a "what" naming a cause
        ("그 다리가 무너진 원인은 무엇인가요?", "그 다리는 왜 무너졌나요?"),
    ],
)
def test_guards_let_paraphrases_through(query: str, candidate: str) -> None:
    assert reject_reason(query, candidate) is None
