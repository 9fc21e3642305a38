"""``ragd train abstention``: chooses the evidence score of :mod:`generator.abstention` on calibration questions.

For each dataset, the corpus minus a seeded held-out share is ingested into the embedded gateway (as ``ragd eval
rag`` does) and the questions of the calibration split (never evaluated) are retrieved, as the chat path does.
A logistic regression per language separates answerable questions from those whose documents were held out;
the threshold keeps false abstentions on answerable calibration questions at or below ``--max-false-abstention``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from generator.abstention import FEATURES, evidence_features
from lab.answers.data import load_qa, sample_items, split_heldout
from lab.answers.runner import InProcessRunner, index_dir
from services.contracts import RetrieveRequest

__all__ = ["add_abstention", "choose", "collect"]


def add_abstention(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, action="append", default=[],
                        help="a dataset as for ragd eval rag (repeatable)")
    parser.add_argument("--rows-from", type=Path, action="append", default=[],
                        help="also use the calibration rows saved in this --json of an earlier run (repeatable)")
    parser.add_argument("--limit", type=int, default=300, help="calibration questions per dataset")
    parser.add_argument("--unanswerable-share", type=float, default=0.2, help="share of documents held out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out documents and the sample")
    parser.add_argument("--max-false-abstention", type=float, default=0.03,
                        help="the largest share of answerable calibration questions allowed to abstain")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse ingested corpora under here")
    parser.add_argument("--json", type=Path, default=None, help="write the choice and its numbers here")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(run=_run)


async def _collect_one(path: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    dataset = load_qa(path)
    docs, marked = split_heldout(dataset, args.unanswerable_share, args.seed)
    items = sample_items(marked.items, args.limit, args.seed, calibration=True)
    data_dir = index_dir(args.data_dir, dataset.name, docs) if args.data_dir else None
    rows = []
    async with InProcessRunner.started(data_dir) as runner:
        await runner.ingest(docs, progress=not args.no_progress)
        settings = runner.app.state.settings
        retriever = runner.app.state.components.retriever
        for item in tqdm(items, desc=f"calibrate {dataset.name}", unit="q", disable=args.no_progress):
            result = await retriever.retrieve(RetrieveRequest(
                tenant=settings.default_tenant, collection=settings.default_collection, query=item.question,
                top_k=settings.top_k))
            features = evidence_features(item.question, result.chunks, context_weight=0.75)
            rows.append({"dataset": dataset.name, "id": item.qid, "language": item.language,
                         "answerable": item.answerable, **features})
    return rows


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in args.dataset:
        rows += asyncio.run(_collect_one(path, args))
    return rows


def _rates(scores: np.ndarray, answerable: np.ndarray, threshold: float) -> dict[str, float]:
    abstains = scores < threshold
    return {"abstain_unanswerable": round(float(abstains[~answerable].mean()), 4) if (~answerable).any() else 0.0,
            "abstain_answerable": round(float(abstains[answerable].mean()), 4) if answerable.any() else 0.0}


def _threshold(scores: np.ndarray, answerable: np.ndarray, max_false: float) -> float:
    """The highest threshold that abstains on at most ``max_false`` of the answerable questions."""
    ordered = np.sort(scores[answerable])
    allowed = int(np.floor(max_false * len(ordered)))
    return float(ordered[allowed]) if len(ordered) else 0.0


def _fit(x: np.ndarray, y: np.ndarray, names: Sequence[str], max_false: float) -> dict[str, Any]:
    """One candidate: a logistic regression over ``names`` (or the single feature as it is), its threshold
    at ``max_false`` and its rates."""
    from sklearn.linear_model import LogisticRegression

    if len(names) == 1:
        weights, scores = {names[0]: 1.0}, x[:, 0]
    else:
        model = LogisticRegression(class_weight="balanced", C=1.0).fit(x, y)
        weights = {"bias": round(float(model.intercept_[0]), 4),
                   **{f: round(float(w), 4) for f, w in zip(names, model.coef_[0], strict=True)}}
        scores = model.decision_function(x)
    threshold = _threshold(scores, y, max_false)
    return {"features": list(names), "weights": weights, "threshold": round(threshold, 4),
            **_rates(scores, y, threshold)}


def choose(rows: Sequence[dict[str, Any]], max_false: float) -> dict[str, Any]:
    """Per language: every non-empty subset of the features (one alone as it is, more through a logistic
    regression), each at the threshold that keeps false abstentions at ``max_false``; the subset that declines
    the most held-out questions there wins (ties: fewer features)."""
    from itertools import combinations

    out: dict[str, Any] = {"weights": {}, "thresholds": {}, "calibration": {}}
    for language in sorted({r["language"] for r in rows}):
        subset = [r for r in rows if r["language"] == language]
        y = np.array([r["answerable"] for r in subset], dtype=bool)
        candidates = []
        for k in range(1, len(FEATURES) + 1):
            for names in combinations(FEATURES, k):
                x = np.array([[r[f] for f in names] for r in subset], dtype=float)
                candidates.append(_fit(x, y, names, max_false))
        best = max(candidates, key=lambda c: (c["abstain_unanswerable"], -len(c["features"])))
        out["weights"][language] = best["weights"]
        out["thresholds"][language] = best["threshold"]
        out["calibration"][language] = {"n": len(subset), "n_unanswerable": int((~y).sum()), "chosen": best,
                                        "candidates": candidates}
    return out


def _run(args: argparse.Namespace) -> int:
    rows = collect(args)
    for path in args.rows_from:
        rows += json.loads(path.read_text(encoding="utf-8"))["rows"]
    if not rows:
        raise SystemExit("ragd train abstention: give --dataset or --rows-from")
    choice = choose(rows, args.max_false_abstention)
    choice["config"] = {"datasets": sorted({r["dataset"] for r in rows}), "limit": args.limit, "seed": args.seed,
                        "unanswerable_share": args.unanswerable_share,
                        "max_false_abstention": args.max_false_abstention, "split": "calibration"}
    print(json.dumps({k: choice[k] for k in ("weights", "thresholds", "calibration")}, indent=1))
    print(f"RAGD_GENERATOR_ABSTAIN_WEIGHTS='{json.dumps(choice['weights'])}'")
    print(f"RAGD_GENERATOR_ABSTAIN_THRESHOLDS='{json.dumps(choice['thresholds'])}'")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**choice, "rows": rows}, indent=1, ensure_ascii=False) + "\n")
    return 0
