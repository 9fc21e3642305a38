"""``ragd eval rag`` on the small fixture, in process with the extractive backend: the command runs the real
embedded pipeline end to end and writes the JSON and Markdown reports the issue names."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("answer_contains_gold", "answer_f1", "cited_gold", "citation_precision", "faithfulness",
        "abstain_unanswerable", "abstain_answerable", "finish_stop", "latency_ms_p50", "latency_ms_p95",
        "ttft_ms_p50", "n")


def test_eval_rag_runs_the_fixture_through_the_embedded_pipeline(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAGD_GENERATOR_BACKEND": "extractive"}
    out, report = tmp_path / "rag.json", tmp_path / "rag.md"
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "eval", "rag", "--dataset", str(ROOT / "tests/fixtures/qa_tiny"),
         "--unanswerable-share", "0.2", "--json", str(out), "--report", str(report), "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(KEYS) <= set(result) and set(result["by_language"]) == {"en", "ko"}
    assert result["n"] == 15 and result["n_unanswerable"] == 4 and result["errors"] == 0
    assert result["config"]["generator"] == "extractive"
    # the fixture's questions are answered by one sentence of their passage, so extraction finds them
    assert result["cited_gold"] >= 0.9 and result["answer_contains_gold"] >= 0.8
    assert result["finish_stop"] == 1.0 and result["faithfulness"] >= 0.9
    assert result["latency_ms_p50"] > 0 and result["ttft_ms_p50"] > 0
    text = report.read_text()
    assert "| answer_contains_gold |" in text and "## Worst questions" in text
    assert len(result["questions"]) == 15


def _long_answer_copy(source: Path, target: Path) -> None:
    """The fixture with every gold answer replaced by the whole sentence of its passage that holds it: a set
    whose answers are free text, not short spans."""
    shutil.copytree(source, target)
    passages = {row["_id"]: row["text"] for row in map(json.loads, (source / "corpus.jsonl").read_text().splitlines())}
    gold = {}
    for line in (source / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query, doc, _ = line.split("\t")
        gold[query] = passages[doc]
    rows = []
    for row in map(json.loads, (source / "answers.jsonl").read_text().splitlines()):
        sentences = re.split(r"(?<=[.!?다])\s+", gold[row["_id"]])
        holding = next(s for s in sentences if any(a.lower() in s.lower() for a in row["answers"]))
        rows.append(json.dumps({"_id": row["_id"], "answers": [holding]}, ensure_ascii=False))
    (target / "answers.jsonl").write_text("\n".join(rows) + "\n")


def test_eval_rag_scores_a_set_with_long_free_text_answers_on_citations_and_abstention(tmp_path: Path) -> None:
    dataset = tmp_path / "qa_long"
    _long_answer_copy(ROOT / "tests/fixtures/qa_tiny", dataset)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAGD_GENERATOR_BACKEND": "extractive"}
    out, report = tmp_path / "rag.json", tmp_path / "rag.md"
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "eval", "rag", "--dataset", str(dataset), "--unanswerable-share", "0.2",
         "--json", str(out), "--report", str(report), "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["answer_metrics"] == "long answers: citations and abstention"
    # a sentence-long gold is no span to look for in the answer: containment and F1 are not computed ...
    assert result["answer_contains_gold"] is None and result["answer_f1"] is None
    assert all(q["contains_gold"] is None for q in result["questions"])
    # ... while citations, abstention, faithfulness and finishing are, as on the short-answer set
    assert result["n"] == 15 and result["n_unanswerable"] == 4 and result["errors"] == 0
    assert result["cited_gold"] >= 0.9 and result["citation_precision"] > 0
    assert result["abstain_unanswerable"] is not None and result["abstain_answerable"] is not None
    assert result["finish_stop"] == 1.0 and result["faithfulness"] >= 0.9
    assert "| cited_gold |" in report.read_text()
