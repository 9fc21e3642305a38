"""``ragd eval guardrails``: recall, false-positive rate and p50/p95 latency per rail and overall."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from guardrails.engine import LocalGuard
from guardrails.pii import PLACEHOLDERS, PiiDetector
from guardrails.settings import GuardrailsSettings
from lab.guardrails.data import default_data_dir, load_split, read_jsonl
from lab.guardrails.evaluation import evaluate, evaluate_pii, load_dataset, write_jsonl
from lab.guardrails.plots import plot_sources, plot_ttft
from lab.guardrails.stream_bench import measure_ttft

__all__ = ["add_guardrails"]

_PII_FILES = ("presidio_synth_pii/synth_dataset_v2.jsonl", "korean_pii_testcases/testcases.jsonl")


def _fmt(v: object) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"  {'':24} {'recall':>7} {'rec b+f':>7} {'fpr':>7} {'flag b':>7} {'attacks':>8} {'benign':>7} "
          f"{'p50 ms':>7} {'p95 ms':>7}")
    for name, r in rows.items():
        print(f"  {name[:24]:24} {_fmt(r['recall']):>7} {_fmt(r['recall_block_or_flag']):>7} {_fmt(r['fpr']):>7} "
              f"{_fmt(r['flag_rate_benign']):>7} {r['attacks']:>8} {r['benign']:>7} "
              f"{r['latency_ms_p50']:>7.2f} {r['latency_ms_p95']:>7.2f}")


def _write_heldout(out_dir: Path, data_dir: Path, group: str) -> int:
    examples = load_split("heldout", data_dir, group=group)  # type: ignore[arg-type]
    suffix = "" if group == "all" else f"_group_{group}"
    for lang in ("en", "ko"):
        subset = [e for e in examples if e.lang == lang]
        path = out_dir / f"heldout_{lang}{suffix}.jsonl"
        n = write_jsonl(path, subset)
        attacks = sum(e.label == "attack" for e in subset)
        print(f"{path}: {n} lines ({attacks} attacks, {n - attacks} benign)")
    return 0


def _run_pii(data_dir: Path, json_out: str | None) -> int:
    rows = [row for rel in _PII_FILES for row in read_jsonl(data_dir / "guardrails" / rel)]
    result = evaluate_pii(PiiDetector(PLACEHOLDERS), rows)
    for name, r in result.items():
        print(f"  {name:30} " + "  ".join(f"{k}={v}" for k, v in r.items()))
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


def _run_streaming(json_out: str | None, plot: str | None) -> int:
    guard = LocalGuard.from_settings(GuardrailsSettings())
    guard.load()
    results = measure_ttft(guard, windows=(0, 16, 32, 48, 96, 160), rates=(20.0, 60.0))
    print(f"  {'window':>7} {'tok/s':>6} {'TTFT ms':>8} {'added ms':>9} {'checks ms':>10}")
    for r in results:
        print(f"  {r.window_chars:>7} {r.tokens_per_second:>6.0f} {r.ttft_ms:>8.1f} {r.added_ms:>9.1f} "
              f"{r.checks_ms_total:>10.1f}")
    if json_out:
        Path(json_out).write_text(json.dumps([asdict(r) for r in results], indent=2), encoding="utf-8")
    if plot:
        plot_ttft(results, Path(plot))
    return 0


def _run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if args.streaming:
        return _run_streaming(args.json, args.plot)
    if args.write_heldout:
        return _write_heldout(Path(args.write_heldout), data_dir, args.group)
    if args.pii:
        return _run_pii(data_dir, args.json)
    if args.leave_source_out:
        from lab.guardrails.report import run_leave_source_out

        policy = Path(args.policy) if args.policy else GuardrailsSettings().policy_path
        return run_leave_source_out(data_dir, policy_path=policy, json_out=args.json, plot=args.plot,
                                    reuse_scores=args.reuse_scores, choose_cuts_on_protocol=args.choose_cuts)
    if not args.dataset:
        print("ragd eval guardrails: --dataset FILE.jsonl is required (or --leave-source-out, --write-heldout DIR, "
              "--pii, --streaming)")
        return 2
    overrides: dict[str, Any] = {}
    if args.model:
        overrides["model_path"] = Path(args.model)
    if args.policy:
        overrides["policy_path"] = Path(args.policy)
    guard = LocalGuard.from_settings(GuardrailsSettings(**overrides))
    guard.load()
    examples = [e for path in args.dataset for e in load_dataset(Path(path))]
    report = evaluate(guard, examples, keep_misses=args.show_misses)
    result = report.to_json()
    result["policy_version"] = guard.policy_version
    result["model"] = guard.settings.model_path.name
    _table("overall (recall, fpr: blocked; rec b+f: blocked or flagged; flag b: benign flagged)", {"all": result})
    print(f"  block {_fmt(result['block_rate'])}, flag {_fmt(result['flag_rate'])}, "
          f"allow {_fmt(result['allow_rate'])} of all texts")
    _table("per rail (fired with action block; latency of the rail alone)", result["per_rail"])
    _table("per language", result["per_language"])
    _table("per source", result["per_source"])
    for miss in report.misses:
        print(f"  miss [{miss['label']}/{miss['source']}, {miss['action']}] {miss['text']!r} {miss['rails']}")
    if args.plot:
        plot_sources(result, Path(args.plot), title=", ".join(Path(p).stem for p in args.dataset))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def add_guardrails(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", nargs="*", default=[], help="JSONL files of {text, label: attack|benign}.")
    parser.add_argument("--json", default=None, help="Write the results here (keys recall, fpr, latency_ms_p95...).")
    parser.add_argument("--model", default=None, help="Classifier .npz (default: the packaged one).")
    parser.add_argument("--policy", default=None, help="Policy YAML (default: the packaged one).")
    parser.add_argument("--data-dir", default=None, help="Shared data directory (default: ../shared/data).")
    parser.add_argument("--write-heldout", default=None, metavar="DIR",
                        help="Write heldout_en.jsonl / heldout_ko.jsonl from the held-out sources and exit.")
    parser.add_argument("--group", choices=("all", "b"), default="all",
                        help="With --write-heldout: all sources, or group B only (unseen-source measurement).")
    parser.add_argument("--leave-source-out", action="store_true",
                        help="The primary protocol: each source family of the training pool scored by a model trained "
                             "on the others, the evaluation-only families by the whole-pool model; per language mean "
                             "and worst family of recall and FPR at the policy's cut points (and the in-distribution "
                             "70/30 table). Fits 13 models (~10 min on 2 cores); vectors are cached under .ragd/.")
    parser.add_argument("--choose-cuts", action="store_true",
                        help="With --leave-source-out: report at the cut points chosen on the protocol (block: mean "
                             "benign family FPR <= 2 %%, each <= 4 %%; flag: mean benign flag-or-block <= 10 %%) "
                             "instead of the policy's.")
    parser.add_argument("--reuse-scores", action="store_true",
                        help="With --leave-source-out: reuse the held-out scores of the last run (no refitting).")
    parser.add_argument("--pii", action="store_true", help="PII recall per entity on the labelled PII sets.")
    parser.add_argument("--streaming", action="store_true",
                        help="Time to first token added by the streaming hold-back, per window size.")
    parser.add_argument("--plot", default=None,
                        help="Write a PNG: TTFT per window (--streaming) or recall/FPR per source (--dataset).")
    parser.add_argument("--show-misses", type=int, default=0, help="Print up to N misclassified texts.")
    parser.set_defaults(run=_run)
