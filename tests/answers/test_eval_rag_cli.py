"""``ragd eval rag`` on the small fixture, in process with the extractive backend: the command runs the real
embedded pipeline end to end and writes the JSON and Markdown reports the issue names."""

from __future__ import annotations

import json
import os
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
