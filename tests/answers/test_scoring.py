"""ragd eval rag's scoring, loading and report: pure logic."""

from __future__ import annotations

import json
from pathlib import Path

from lab.answers.data import (
    QADataset,
    QAItem,
    in_calibration_split,
    load_qa,
    near_duplicates,
    sample_items,
    split_heldout,
)
from lab.answers.judge import agreement, lexical_judge, load_labels
from lab.answers.metrics import score, summarize
from lab.answers.report import markdown, question_rows
from lab.answers.runner import Outcome
from lab.answers.scoring import answer_f1, contains_gold, is_abstention, supported
from services.contracts import DocumentIn

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "qa_tiny"


def test_korean_containment_ignores_spacing_and_a_trailing_particle() -> None:
    assert contains_gold("그는 1989년2월 15일에 지명수배되었다 [1].", ["1989년 2월 15일"])
    assert contains_gold("대한민국 출신의 선수이다.", ["대한민국의"])
    assert not contains_gold("일본 출신의 선수이다.", ["대한민국의"])


def test_english_containment_is_on_word_boundaries_and_ignores_articles() -> None:
    assert contains_gold("It carries up to 180 passengers [1].", ["180"])
    assert contains_gold("It was launched at Brannock shipyard.", ["the Brannock shipyard"])
    assert not contains_gold("It carries 1800 passengers.", ["180"])


def test_f1_is_token_level_in_english_and_character_level_in_korean() -> None:
    assert answer_f1("Kawann Short", ["Kawann Short"]) == 1.0
    assert 0.0 < answer_f1("Kawann Short led the team", ["Kawann Short"]) < 1.0
    assert answer_f1("임수경", ["임수경이"]) == 1.0
    assert answer_f1("완전히 다른 말", ["임수경"]) == 0.0


def test_abstention_is_an_uncited_decline_in_either_language() -> None:
    assert is_abstention("The documents do not cover this question.", 0)
    assert is_abstention("문서에서 이 질문에 대한 정보를 찾을 수 없습니다.", 0)
    assert not is_abstention("The documents do not cover the 1910 flood [1].", 1)
    assert not is_abstention("It was built in 1871 [1].", 0)


def test_lexical_support_needs_the_numbers_and_most_words_of_the_sentence() -> None:
    source = ["The Aurora lighthouse was built in 1871 by the harbour board."]
    assert supported("The lighthouse was built in 1871 [1].", source)
    assert not supported("The lighthouse was built in 1881 [1].", source)
    assert not supported("It was designed by a famous Scottish engineer [1].", source)
    assert not supported("It was built in 1871 [1].", [])


def test_the_fixture_loads_with_gold_answers_and_languages() -> None:
    dataset = load_qa(FIXTURE)
    assert len(dataset.docs) == 10 and len(dataset.items) == 20 and dataset.short_answers
    assert {item.language for item in dataset.items} == {"en", "ko"}
    assert all(item.gold_docs and item.answers for item in dataset.items)


def test_a_squad_json_is_read_in_place_and_wins_over_beir_files(tmp_path: Path) -> None:
    data = {"data": [{"title": "T", "paragraphs": [{"context": "Alpha was founded in 1901. It grew.",
                                                    "qas": [{"id": "q1", "question": "When was Alpha founded?",
                                                             "answers": [{"text": "1901", "answer_start": 21}]}]}]}]}
    (tmp_path / "set.json").write_text(json.dumps(data))
    (tmp_path / "corpus.jsonl").write_text("")
    dataset = load_qa(tmp_path)
    assert [d.title for d in dataset.docs] == ["T"]
    assert dataset.items[0].answers == ("1901",) and dataset.items[0].gold_docs == (dataset.docs[0].id,)


def test_held_out_documents_and_the_sample_are_seeded_and_never_touch_the_calibration_split() -> None:
    dataset = load_qa(FIXTURE)
    kept_a, marked_a = split_heldout(dataset, 0.2, seed=3)
    kept_b, marked_b = split_heldout(dataset, 0.2, seed=3)
    assert [d.id for d in kept_a] == [d.id for d in kept_b] and len(kept_a) == 8
    held = {d.id for d in dataset.docs} - {d.id for d in kept_a}
    assert all(item.answerable == (item.gold_docs[0] not in held) for item in marked_a.items)
    sample = sample_items(marked_a.items, 6, seed=3)
    assert [i.qid for i in sample] == [i.qid for i in sample_items(marked_b.items, 6, seed=3)]
    assert not any(in_calibration_split(i.qid) for i in sample)
    assert all(in_calibration_split(i.qid) for i in sample_items(marked_a.items, None, 3, calibration=True))


def test_a_held_out_document_takes_its_near_copy_with_it() -> None:
    text = ("Reciprocal rank fusion adds one over sixty plus the rank of each list. It needs no score calibration, "
            "so lists of different scorers can be fused directly.")
    docs = [DocumentIn(id="a", title="RRF", text=text),
            DocumentIn(id="a-copy", title="RRF", text=text.replace("adds", "sums") + " It is the default."),
            DocumentIn(id="b", title="BM25", text="BM25 scores a document by its term frequencies and lengths."),
            DocumentIn(id="c", title="HNSW", text="HNSW finds approximate nearest neighbours in a layered graph.")]
    assert near_duplicates(docs, {"a"}) == {"a-copy"}
    assert near_duplicates(docs, {"b"}) == set()  # a different document is not a copy
    items = [QAItem(qid="q1", question="What does RRF add?", gold_docs=("a",), answers=("one over sixty",))]
    dataset = QADataset(name="copies", docs=docs, items=items, short_answers=True)
    for seed in range(20):  # whichever of the pair is drawn, the other leaves with it
        kept, marked = split_heldout(dataset, 0.25, seed)
        ids = {str(d.id) for d in kept}
        assert ("a" in ids) == ("a-copy" in ids)
        assert marked.items[0].answerable == ("a" in ids)


def test_scores_and_the_report_put_the_worst_question_first() -> None:
    dataset = load_qa(FIXTURE)
    items = {i.qid: i for i in dataset.items}
    docs = dataset.doc_text()
    good = Outcome(items["q-en-1"], "It was built in 1871 by the harbour board [1].", ["en-lighthouse"], "stop",
                   10.0, 5.0)
    wrong = Outcome(items["q-en-7"], "The lighthouse was built in 1871 [1].", ["en-lighthouse"], "length", 30.0, 9.0)
    rows = [score(o, docs, short_answers=True) for o in (good, wrong)]
    summary = summarize(rows)
    assert summary["answer_contains_gold"] == 0.5 and summary["cited_gold"] == 0.5
    assert summary["finish_stop"] == 0.5 and summary["faithfulness"] == 1.0 and summary["n"] == 2
    assert summary["latency_ms_p50"] == 20.0
    assert question_rows(rows)[0]["id"] == "q-en-7"
    report = {"dataset": "qa_tiny", **summary, "by_language": {"en": summary},
              "config": {"unanswerable_share": 0.2, "seed": 0, "target": "in process", "generator": "x"}}
    text = markdown(report, rows)
    assert text.index("| metric |") < text.index("How many passengers")
    assert "gold answer not in the answer" in text and "When was the Aurora" not in text


def test_the_hand_labels_hold_both_languages_and_both_verdicts() -> None:
    labels = load_labels()
    assert len(labels) >= 30
    assert {r["lang"] for r in labels} == {"en", "ko"} and {r["supported"] for r in labels} == {True, False}
    result = agreement(lexical_judge, labels)
    assert result["n"] == len(labels) and 0.0 <= result["accuracy"] <= 1.0 and set(result) >= {"en", "ko", "kappa"}
    assert agreement(lambda s, src: True, labels)["kappa"] == 0.0


def test_reports_are_drawn_side_by_side(tmp_path: Path) -> None:
    from lab.answers.plot import plot_reports

    report = {"dataset": "xquad.en", "n": 3, "config": {"generator": "extractive"}, "latency_ms_p50": 12.0,
              "answer_contains_gold": 0.8, "cited_gold": 0.9, "faithfulness": 1.0, "abstain_unanswerable": 0.5,
              "abstain_answerable": 0.02, "finish_stop": 1.0}
    out = tmp_path / "paths.png"
    plot_reports([report, {**report, "config": {"generator": "llm"}}], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_abstention_calibration_keeps_false_abstentions_at_the_bound_and_picks_the_signal_that_separates() -> None:
    from lab.answers.abstention import choose

    rows = []
    for i in range(200):  # coverage separates the classes; dense and bm25 are noise
        answerable = i % 4 != 0
        rows.append({"id": str(i), "language": "ko", "answerable": answerable,
                     "coverage": (0.6 if answerable else 0.2) + i % 7 / 50, "dense": 0.8 + i % 5 / 100,
                     "bm25": 1.0 + i % 3})
    chosen = choose(rows, 0.03)
    best = chosen["calibration"]["ko"]["chosen"]
    assert best["features"] == ["coverage"] and set(chosen["weights"]["ko"]) == {"bias", "coverage"}
    assert best["abstain_answerable"] <= 0.03 and best["abstain_unanswerable"] == 1.0
    weights, threshold = chosen["weights"]["ko"], chosen["thresholds"]["ko"]

    def score(coverage: float) -> float:
        return weights["bias"] + weights["coverage"] * coverage

    assert score(0.2 + 6 / 50) < threshold <= score(0.6)


def test_calibration_rows_with_sources_are_scored_by_the_runtime_signals_and_traded_off() -> None:
    from generator.abstention import FEATURES
    from lab.answers.abstention import features_of, tradeoff

    source = {"chunk_id": "c1", "doc_id": "d1", "title": "Aurora lighthouse", "score": 1.0,
              "ranks": {"dense": 1, "bm25": 1}, "side_scores": {"dense": 0.83, "bm25": 12.0},
              "text": "The Aurora lighthouse stands on Vell Island. It was built in 1871 by the harbour board."}
    covered = {"id": "q1", "language": "en", "answerable": True, "question": "When was the Aurora lighthouse built?",
               "sources": [source]}
    other = {**covered, "id": "q2", "answerable": False, "question": "Who painted the Mona Lisa?"}
    assert set(features_of(covered)) == set(FEATURES) and features_of(covered)["coverage"] > 0.8
    assert features_of(other)["coverage"] == 0.0
    curve = tradeoff([covered, other], {"weights": {"en": {"coverage": 1.0}}, "thresholds": {"en": 0.5}})["en"]
    assert curve["at_threshold"] == {"abstain_unanswerable": 1.0, "abstain_answerable": 0.0}
    assert (0.0, 1.0) in curve["curve"] and (1.0, 1.0) in curve["curve"]


def test_a_held_out_question_answered_from_a_retained_document_is_counted_and_said() -> None:
    from dataclasses import replace

    dataset = load_qa(FIXTURE)
    item = replace(next(i for i in dataset.items if i.qid == "q-en-1"), answerable=False)
    answered = score(Outcome(item, "It was built in 1871 by the harbour board [1].", ["en-lighthouse"], "stop", 9.0,
                             4.0), dataset.doc_text(), short_answers=True)
    other = score(Outcome(item, "It has a red lamp [1].", ["en-lighthouse"], "stop", 9.0, 4.0), dataset.doc_text(),
                  short_answers=True)
    summary = summarize([answered, other])
    assert summary["held_out_answered"] == 1 and summary["abstain_unanswerable"] == 0.0
    assert "a retained document holds its gold answer" in answered.failures[0]
    assert "retained" not in other.failures[0]


def test_the_tradeoff_curve_is_drawn(tmp_path: Path) -> None:
    from lab.answers.plot import plot_tradeoff

    curves = {"en": {"n": 10, "n_unanswerable": 2, "curve": [(0.0, 0.0), (0.0, 0.5), (0.125, 1.0)],
                     "at_threshold": {"abstain_unanswerable": 0.5, "abstain_answerable": 0.0}}}
    out = tmp_path / "tradeoff.png"
    plot_tradeoff(curves, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
