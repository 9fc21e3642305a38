"""``ragd eval guardrails --leave-source-out``: run the protocol, choose the cut points on it, print
and write the tables (JSON; PNG with ``--plot``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from guardrails.classifier import TURN_MIN
from guardrails.policy import load_policy
from guardrails.settings import default_policy_path
from lab.guardrails.families import FAMILIES
from lab.guardrails.protocol import (
    Pool,
    Recipe,
    choose_cuts,
    choose_turn_cut,
    load_pool,
    per_family,
    run_protocol,
    summarize,
    turn_rates,
    with_turn_cut,
)
from lab.guardrails.vectors import VectorCache

__all__ = ["protocol_report", "run_leave_source_out"]

_SCORES = Path(".ragd") / "guardrails" / "protocol-scores.npz"


def _fmt(v: object) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def print_tables(result: dict[str, Any]) -> None:
    cuts = result["cuts"]
    print(f"\nleave-source-out, cut points {cuts} (block, flag)")
    print(f"  {'family':22} {'lang':4} {'attacks':>7} {'benign':>6} {'recall':>7} {'rec b+f':>7} {'fpr':>6} "
          f"{'flag b':>6}  scored by")
    for name, langs in result["families"].items():
        for lang, r in langs.items():
            print(f"  {name[:22]:22} {lang:4} {r['attacks']:>7} {r['benign']:>6} {_fmt(r['recall']):>7} "
                  f"{_fmt(r['recall_block_or_flag']):>7} {_fmt(r['fpr']):>6} {_fmt(r['flag_rate_benign']):>6}  "
                  f"{result['scored_by'][name]}")
    if "turn_cut" in result:
        t = result["turn_cut"]
        print(f"\nturn model veto cut: shipped {t['shipped']}, chosen on the protocol {t['chosen']}; ragd's chat turns "
              f"(out of fold) at the shipped cut: {t['chat_turns']}")
    for table in ("summary", "nested_cut_summary", "in_distribution_summary"):
        print(f"\n{table}")
        for lang, s in result.get(table, {}).items():
            print(f"  {lang}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in s.items() if not k.endswith("_families")))


def protocol_report(pool: Pool, scores: dict[str, np.ndarray], cuts: dict[str, tuple[float, float]],
                    **choose: float) -> dict[str, Any]:
    """Tables at ``cuts``; also each family at cut points chosen without it (``nested``)."""
    names = [f.name for f in FAMILIES]
    lso = scores["lso"]
    scored = ~np.isnan(lso)
    table = per_family(pool, lso, scored, cuts, names)
    nested: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        own = {lang: choose_cuts(pool, lso, scored, lang, exclude=name, **choose) for lang in cuts}
        nested.update(per_family(pool, lso, scored, own, [name]))
    result: dict[str, Any] = {
        "protocol": "leave-source-out", "cuts": {k: list(v) for k, v in cuts.items()},
        "scored_by": {f.name: "model trained without this family" if f.trainable else "model trained on the whole pool"
                      for f in FAMILIES},
        "licence": {f.name: f.licence for f in FAMILIES},
        "families": table, "summary": {lang: summarize(table, lang) for lang in cuts},
        "nested_cut_summary": {lang: summarize(nested, lang) for lang in cuts}, "nested_cut_families": nested,
    }
    if "turns_main" in scores:
        result["turn_cut"] = {"shipped": TURN_MIN, "chosen": choose_turn_cut(pool, scores, cuts),
                              "chat_turns": turn_rates(pool, scores, cuts, TURN_MIN)}
    if "in_dist" in scores:
        held = ~np.isnan(scores["in_dist"])
        dist = per_family(pool, scores["in_dist"], held, cuts, names)
        result["in_distribution"] = dist
        result["in_distribution_summary"] = {lang: summarize(dist, lang) for lang in cuts}
    return result


def run_leave_source_out(data_dir: Path, *, policy_path: Path | None, json_out: str | None, plot: str | None,
                         reuse_scores: bool, choose_cuts_on_protocol: bool) -> int:
    start = time.perf_counter()
    recipe = Recipe()
    pool = load_pool(data_dir)
    if reuse_scores and _SCORES.exists():
        with np.load(_SCORES, allow_pickle=False) as data:
            scores = {k: data[k] for k in data.files if data[k].size}
        if "lso_main" in scores:
            scores["lso"] = with_turn_cut(scores)
    else:
        if recipe.semantic is not None:
            pool.vectors = VectorCache(recipe.semantic).vectors(pool.normalized)
        scores = run_protocol(pool, recipe)
        _SCORES.parent.mkdir(parents=True, exist_ok=True)
        np.savez(_SCORES, allow_pickle=False, **scores)
    if choose_cuts_on_protocol:
        scored = ~np.isnan(scores["lso"])
        cuts = {lang: choose_cuts(pool, scores["lso"], scored, lang) for lang in ("en", "ko")}
    else:
        rail = load_policy(policy_path or default_policy_path()).input.injection
        cuts = {lang: (rail.cuts(lang)[0], rail.cuts(lang)[1] or rail.cuts(lang)[0]) for lang in ("en", "ko")}
    result = protocol_report(pool, scores, cuts)
    result["texts"] = len(pool.rows)
    result["seconds"] = round(time.perf_counter() - start, 1)
    print_tables(result)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    if plot:
        from lab.guardrails.plot import plot_protocol

        plot_protocol(result, Path(plot))
    return 0
