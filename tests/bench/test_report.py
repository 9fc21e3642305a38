"""docs/benchmarks.md is generated from the recorded runs, and says where each number came from."""

from __future__ import annotations

import json
from pathlib import Path

from lab.bench.report import render

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_page_is_what_the_recorded_runs_give() -> None:
    page = ROOT / "docs" / "benchmarks.md"
    assert page.read_text() == render(ROOT / "bench" / "results", page=page), "run `ragd bench report`"


def test_a_recorded_run_becomes_a_row_and_an_empty_folder_gives_no_tables(tmp_path: Path) -> None:
    assert "## " not in render(tmp_path, clients=tmp_path)
    answers = tmp_path / "answers"
    answers.mkdir()
    run = {"dataset": "xquad.en", "n": 10, "answer_contains_gold": 0.9, "abstain_answerable": 0.04,
           "latency_ms_p50": 41.2, "config": {"generator": "extractive"}}
    (answers / "xquad.json").write_text(json.dumps(run))
    page = render(tmp_path, clients=tmp_path)
    row = next(line for line in page.splitlines() if line.startswith("| xquad.en"))
    assert "| extractive | 10 | 0.900 |" in row and "| 0.040 |" in row and "`answers/xquad.json`" in row
    assert "## Answers" in page and "## Latency" not in page


def test_whole_numbers_keep_their_trailing_zeros() -> None:
    from lab.bench.report import _num

    assert _num(39.7, 0) == "40" and _num(100.2, 0) == "100" and _num(0.8, 3) == "0.8" and _num(1234.5) == "1,234"
