"""The pair set is what docs/cache.md says it is, and ``ragd eval cache`` reports and plots from it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cache.settings import CacheSettings
from lab.cache.evaluation import PAIRS_PATH, THRESHOLDS, load_pairs
from services.cli import main


def test_pair_set_covers_both_languages_and_every_kind() -> None:
    pairs = load_pairs()
    assert len(pairs) >= 200
    assert len({p.id for p in pairs}) == len(pairs)
    kinds = Counter((p.lang, p.kind) for p in pairs)
    for lang in ("en", "ko"):
        assert kinds[(lang, "paraphrase")] >= 50
        for kind in ("negation", "scope", "entity", "number"):
            assert kinds[(lang, kind)] >= 8, (lang, kind)
    assert all(p.hit == (p.kind == "paraphrase") for p in pairs)
    assert {p.split for p in pairs} <= {"dev", "holdout"}


def test_eval_cli_writes_report_and_plot(tmp_path: Path) -> None:
    pairs = load_pairs()
    subset = [p for p in pairs if p.lang == "en"][:6] + [p for p in pairs if p.lang == "ko" and not p.hit][:6]
    small = tmp_path / "pairs.jsonl"
    small.write_text("\n".join(json.dumps(_row(p), ensure_ascii=False) for p in subset))
    out, png = tmp_path / "report.json", tmp_path / "plot.png"
    assert main(["eval", "cache", "--pairs", str(small), "--json", str(out), "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert report["chosen_threshold"] in THRESHOLDS
    # one threshold per language, each chosen on that language's dev pairs alone
    languages = report["leave_kind_out"]["languages"]
    assert set(languages) == {"en", "ko"} == set(report["chosen_thresholds"])
    assert all(report["chosen_thresholds"][lang] == languages[lang]["threshold"] for lang in languages)
    dev = report["at_chosen"]["dev"]
    assert dev["pairwise"]["false_hit_rate"] <= 0.01 and dev["crowded"]["false_hit_rate"] <= 0.01
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _row(p: object) -> dict[str, object]:
    return {k: getattr(p, k) for k in ("id", "lang", "kind", "hit", "split", "a", "b")}


def test_eval_cli_without_dev_split_uses_the_configured_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = [p for p in load_pairs() if p.split == "holdout"][:4] + [
        p for p in load_pairs() if p.split == "holdout" and p.lang == "ko"][:4]
    rows = [{**_row(p), "split": "independent"} for p in pairs]
    small = tmp_path / "trios.jsonl"
    small.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    out = tmp_path / "report.json"
    assert main(["eval", "cache", "--pairs", str(small), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["threshold_source"] == "configured"
    assert report["chosen_threshold"] == CacheSettings().semantic_threshold
    assert report["chosen_thresholds"] == CacheSettings().semantic_thresholds
    assert report["at_chosen"]["independent"]["thresholds"] == CacheSettings().semantic_thresholds
    assert set(report["at_chosen"]) == {"independent", "independent_en", "independent_ko"}
    assert "configured RAGD_CACHE_SEMANTIC_THRESHOLD" in capsys.readouterr().out


def test_eval_cli_refuses_an_empty_pair_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert main(["eval", "cache", "--pairs", str(empty)]) == 2
    assert "holds no pairs" in capsys.readouterr().err


def test_eval_cli_with_dev_chooses_the_shipped_settings_for_pairs_without_a_dev_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An independent pair set with the project's dev pairs prepended (``--with-dev``) is scored at what the
    protocol chooses on them: the shipped thresholds and guards, not what a part of the dev pairs would give."""
    rows = [{**_row(p), "split": "independent"} for p in load_pairs() if p.split == "holdout"][:8]
    small = tmp_path / "trios.jsonl"
    small.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    out = tmp_path / "report.json"
    args = ["eval", "cache", "--with-dev", "--no-evidence", "--pairs", str(small), "--json", str(out),
            "--cache-root", str(tmp_path / "vectors")]
    assert main(args) == 0
    report = json.loads(out.read_text())
    shipped = CacheSettings()
    assert report["threshold_source"] == "leave-kind-out"
    assert report["chosen_thresholds"] == {**shipped.semantic_thresholds, "en": shipped.semantic_threshold}
    assert report["guards_off"] == sorted(shipped.guards_off)
    assert report["pairs"]["dev"]["paraphrase"] > 300 and "holdout" not in report["pairs"]
    paraphrases = sum(bool(r["hit"]) for r in rows)
    assert report["pairs"]["independent"] == {"paraphrase": paraphrases, "near_miss": len(rows) - paraphrases}
    # without --with-dev the same file is scored at the configured settings, and the output says how to choose
    assert main(["eval", "cache", "--no-evidence", "--pairs", str(small), "--cache-root",
                 str(tmp_path / "vectors")]) == 0
    assert "--with-dev" in capsys.readouterr().err
    # prepending a part of the dev pairs (the first pair file alone) says it is a part
    assert main(["eval", "cache", "--no-evidence", "--pairs", str(PAIRS_PATH), "--pairs", str(small), "--json",
                 str(out), "--cache-root", str(tmp_path / "vectors")]) == 0
    assert "the dev pairs given are 431 of the project's" in capsys.readouterr().err
