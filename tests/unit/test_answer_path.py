"""The answer path around the model: abstention, prompt templates, context packing, decoding defaults."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from prometheus_client import REGISTRY

from generator.abstention import FEATURES, Abstainer, abstainer_from, evidence_features
from generator.answer_type import answer_type, holds
from generator.client import Decoding, OpenAIGenerator
from generator.packing import ContextPacker, ServerTokenizer, estimate_tokens
from generator.prompt import build_messages, template
from generator.settings import GeneratorSettings
from services.contracts import ChatMessage, GenerationParams, ScoredChunk

LIGHTHOUSE = ScoredChunk(chunk_id="c1", doc_id="d1", title="Aurora lighthouse", score=1.0,
                         side_scores={"dense": 0.83, "bm25": 12.0},
                         text="The Aurora lighthouse stands on Vell Island. It was built in 1871 by the harbour board.")
FESTIVAL = ScoredChunk(chunk_id="c2", doc_id="d2", title="달빛 축제", score=0.5, side_scores={"dense": 0.8},
                       text="달빛 축제는 매년 9월 보름 무렵 강변 공원에서 열린다.")
ABSTAINER = Abstainer(weights={"en": {"coverage": 1.0}, "ko": {"coverage": 1.0}}, thresholds={"en": 0.5, "ko": 0.5},
                      texts={"en": "Not covered.", "ko": "다루지 않습니다."})


def _abstentions(language: str) -> float:
    return REGISTRY.get_sample_value("ragd_abstentions_total", {"language": language}) or 0.0


def test_evidence_features_read_the_question_coverage_and_the_raw_side_scores() -> None:
    features = evidence_features("When was the Aurora lighthouse built?", [LIGHTHOUSE], context_weight=0.75)
    assert features["coverage"] > 0.8 and features["dense"] == 0.83 and 2.5 < features["bm25"] < 2.6
    empty = evidence_features("anything", [], context_weight=0.75)
    assert set(empty) == set(FEATURES) and all(v == 0.0 for k, v in empty.items() if k != "units")


def test_evidence_features_see_the_lead_of_the_first_source_and_the_kind_of_answer_asked_for() -> None:
    second = LIGHTHOUSE.model_copy(update={"chunk_id": "c3", "side_scores": {"dense": 0.61, "bm25": 3.0},
                                           "text": "The harbour board met on Vell Island every spring."})
    first = LIGHTHOUSE.model_copy(update={"ranks": {"dense": 1, "bm25": 1}})
    features = evidence_features("When was the Aurora lighthouse built?", [first, second], context_weight=0.75)
    assert abs(features["dense_gap"] - 0.22) < 1e-9 and features["agree"] == 1.0
    assert features["typed_miss"] == 0.0 and features["typed"] == features["coverage"]
    # the best sentence shares the question's words but holds no number: a "how many" question is not answered
    many = evidence_features("How many keepers did the Aurora lighthouse on Vell Island have?", [second, first],
                             context_weight=0.75)
    assert many["typed_miss"] == 1.0 and many["typed"] < many["coverage"] and many["agree"] == 0.0
    assert many["union"] < 1.0  # "keepers" is in no source


def test_lexical_signals_read_the_sources_collection_wide_coverage_of_the_question() -> None:
    sibling = LIGHTHOUSE.model_copy(update={"chunk_id": "c3", "side_scores": {"bm25": 3.0, "bm25_coverage": 0.2}})
    gold = LIGHTHOUSE.model_copy(update={"side_scores": {"bm25": 12.0, "bm25_coverage": 0.9}})
    features = evidence_features("When was the Aurora lighthouse built?", [sibling, gold], context_weight=0.75)
    assert features["lexical"] == 0.9 and features["lexical_top"] == 0.2
    # the signals read the BM25 side: when it failed for the question, a score that weighs them is not judged
    abstainer = Abstainer(weights={"en": {"lexical": 5.0}}, thresholds={"en": 2.0}, texts={"en": "Not covered."})
    assert abstainer.failed_sides("en", ["bm25"]) == ["bm25"]
    assert abstainer.decide("When was the Aurora lighthouse built?", "en", [sibling]).abstain
    assert not abstainer.decide("When was the Aurora lighthouse built?", "en", [gold]).abstain


def test_answer_types_are_read_from_the_question_in_either_language() -> None:
    assert answer_type("How many keepers did it have?", "en") == "number"
    assert answer_type("In what year was it built?", "en") == answer_type("언제 지어졌나요?", "ko") == "date"
    assert answer_type("몇 명이 참가했나요?", "ko") == "number" and answer_type("누가 만들었나?", "ko") == "any"
    assert holds("It was built in 1871.", "date") and holds("세 번 열렸다.", "number")
    assert not holds("The harbour board met on the island.", "number") and holds("Anything at all.", "any")


def test_covered_questions_pass_and_uncovered_ones_abstain_in_their_language_and_are_counted() -> None:
    assert not ABSTAINER.decide("When was the Aurora lighthouse built?", "en", [LIGHTHOUSE]).abstain
    before_en, before_ko = _abstentions("en"), _abstentions("ko")
    english = ABSTAINER.decide("What is the capital of France?", "en", [LIGHTHOUSE])
    korean = ABSTAINER.decide("프랑스의 수도는 어디인가요?", "ko", [FESTIVAL, LIGHTHOUSE])
    assert english.abstain and english.text == "Not covered."
    assert korean.abstain and korean.text == "다루지 않습니다."
    assert _abstentions("en") == before_en + 1 and _abstentions("ko") == before_ko + 1
    assert ABSTAINER.decide("When was the Aurora lighthouse built?", "en", []).abstain  # nothing retrieved


def test_a_failed_retrieval_side_skips_the_judgement_instead_of_declining_everything() -> None:
    dense_weighted = Abstainer(weights={"en": {"bias": -10.0, "dense": 12.0, "coverage": 1.0}}, thresholds={"en": 0.5},
                               texts={"en": "Not covered."})
    assert not dense_weighted.decide("When was the Aurora lighthouse built?", "en", [LIGHTHOUSE]).abstain
    bm25_only = LIGHTHOUSE.model_copy(update={"side_scores": {"bm25": 12.0}})
    assert dense_weighted.decide("What is the capital of France?", "en", [bm25_only]).abstain  # dense found nothing
    assert dense_weighted.failed_sides("en", ["dense", "rerank"]) == ["dense"]
    assert not dense_weighted.decide("What is the capital of France?", "en", [bm25_only], degraded=["dense"]).abstain
    assert dense_weighted.decide("What is the capital of France?", "en", [LIGHTHOUSE], degraded=["bm25"]).abstain
    assert ABSTAINER.failed_sides("en", ["dense", "bm25"]) == []  # coverage alone reads no side


def test_abstention_settings_build_an_abstainer_or_none() -> None:
    built = abstainer_from(GeneratorSettings())
    assert built is not None and set(built.texts) == {"en", "ko"}
    assert abstainer_from(GeneratorSettings(abstain=False)) is None
    with pytest.raises(ValueError, match="cosine"):  # a misspelt signal would silently weigh nothing
        abstainer_from(GeneratorSettings(abstain_weights={"en": {"bias": 1.0, "cosine": 2.0}}))


def test_templates_are_versioned_files_chosen_by_language_with_sources_before_the_question() -> None:
    assert template("en").name == "en.v1" and template("ko").name == "ko.v1" and template("fr").name == "en.v1"
    messages = build_messages("달빛 축제는 어디에서 열리나요?", [FESTIVAL, LIGHTHOUSE], language="ko",
                              history=[ChatMessage(role="user", content="안녕")])
    assert messages[0].content == template("ko").system and messages[1].content == "안녕"
    user = messages[-1].content
    assert user.index("[1] 달빛 축제:") < user.index("[2] Aurora lighthouse:") < user.index("질문: 달빛 축제는")
    same_sources = build_messages("다른 질문?", [FESTIVAL, LIGHTHOUSE], language="ko")
    prefix = user[: user.index("질문:")]
    assert same_sources[-1].content.startswith(prefix)  # a shared prefix for prefix caching
    assert build_messages("q", [], system_prompt="custom")[0].content == "custom"


class FakeCharTokenizer(ServerTokenizer):
    """One token per character, no server: packing's arithmetic alone."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9/v1", model="m")

    async def count(self, text: str) -> int:
        return len(text)


def test_packing_drops_the_lowest_ranked_sources_until_prompt_and_answer_fit() -> None:
    chunks = [ScoredChunk(chunk_id=f"c{i}", doc_id=f"d{i}", text="x" * 300, score=1.0 / i) for i in range(1, 5)]

    def build(kept: Sequence[ScoredChunk]) -> list[ChatMessage]:
        return build_messages("question?", kept, system_prompt="s")

    async def pack(window: int) -> list[str]:
        packer = ContextPacker(FakeCharTokenizer(), window=window)
        _, kept = await packer.pack(build, chunks, max_tokens=100)
        await packer.tokenizer.aclose()
        return [c.chunk_id for c in kept]

    assert asyncio.run(pack(10_000)) == ["c1", "c2", "c3", "c4"]
    assert asyncio.run(pack(900)) == ["c1", "c2"]
    assert asyncio.run(pack(50)) == []


def test_a_tokenizer_that_cannot_reach_its_server_estimates_on_the_long_side() -> None:
    async def count() -> int:
        tokenizer = ServerTokenizer("http://127.0.0.1:9/v1", model="m", timeout_s=0.5)
        try:
            return await tokenizer.count("달빛 축제 hello world")
        finally:
            await tokenizer.aclose()

    assert asyncio.run(count()) == estimate_tokens("달빛 축제 hello world") >= 4 + 4


def test_decoding_defaults_join_the_clients_parameters() -> None:
    generator = OpenAIGenerator("http://127.0.0.1:9/v1", model="m",
                                decoding=Decoding(stop=("\nQuestion:",), frequency_penalty=0.3,
                                                  extra_body={"repeat_penalty": 1.1}))
    kwargs = generator._kwargs([ChatMessage(role="user", content="hi")], GenerationParams(stop=("END",)))
    assert kwargs["stop"] == ["END", "\nQuestion:"] and kwargs["frequency_penalty"] == 0.3
    assert kwargs["extra_body"] == {"repeat_penalty": 1.1}
    plain = OpenAIGenerator("http://127.0.0.1:9/v1", model="m")._kwargs([], GenerationParams())
    assert "stop" not in plain and "frequency_penalty" not in plain and "extra_body" not in plain
    asyncio.run(generator.aclose())
