"""``ragd train abstention``: chooses the evidence score of :mod:`generator.abstention` on calibration questions.

For each dataset and held-out seed, the corpus minus that seed's held-out share is ingested into the embedded
gateway (as ``ragd eval rag`` does) and the questions of the calibration split (``in_calibration_split``: never
evaluated) are retrieved, as the chat path does; each row keeps its retrieved sources, so the signals are
recomputed from them (``--rows-from``) whenever a signal changes, without retrieving again. Several seeds hold
out other documents each time: more declined examples from the same calibration questions.

Per language, forward selection adds the signal that most raises the share of held-out questions declined at
``--max-false-abstention``, measured out of fold (five folds grouped by question, so a question seen under
several seeds never scores itself); a logistic regression over the chosen signals (standardised, returned as
weights over the raw signals) is then fitted on every row, and its threshold is the highest one that keeps
false abstentions on the answerable calibration rows at or below the bound.

``--evaluation-split`` collects the evaluated questions' rows instead (seed and sample as ``ragd eval rag``), and
only for ``--curve-rows``: the chosen score's trade-off on them is reported and plotted, never chosen on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from generator.abstention import FEATURES, evidence_features
from lab.answers.data import load_qa, sample_items, split_heldout
from lab.answers.plot import plot_tradeoff
from lab.answers.runner import InProcessRunner, index_dir
from services.contracts import RetrieveRequest, ScoredChunk

__all__ = ["add_abstention", "choose", "collect", "features_of", "fit_language", "tradeoff"]

CONTEXT_WEIGHT = 0.75  # as the Abstainer's default
_FOLDS = 5
_MIN_GAIN = 0.01  # the least rise in declined held-out questions a further signal must bring
_SOURCE_FIELDS = {"chunk_id", "doc_id", "title", "text", "score", "ranks", "side_scores"}


def add_abstention(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, action="append", default=[],
                        help="a dataset as for ragd eval rag (repeatable)")
    parser.add_argument("--rows-from", type=Path, action="append", default=[],
                        help="also use the calibration rows saved in this --json of an earlier run (repeatable)")
    parser.add_argument("--limit", type=int, default=300, help="calibration questions per dataset")
    parser.add_argument("--unanswerable-share", type=float, default=0.2, help="share of documents held out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out documents and the sample")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="collect once per seed (other held-out documents each time; more declined examples), "
                             "each in a child process of its own")
    parser.add_argument("--evaluation-split", action="store_true",
                        help="collect the evaluation split's questions instead: only for --curve, never for choosing")
    parser.add_argument("--max-false-abstention", type=float, default=0.03,
                        help="the largest share of answerable calibration questions allowed to abstain")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse ingested corpora under here")
    parser.add_argument("--save-rows", type=Path, default=None,
                        help="write the collected rows with their retrieved sources here (for --rows-from)")
    parser.add_argument("--curve-rows", type=Path, action="append", default=[],
                        help="rows saved with --evaluation-split: report the chosen score's trade-off on them")
    parser.add_argument("--curve", type=Path, default=None, help="plot that trade-off here (PNG)")
    parser.add_argument("--target-false", type=float, default=0.05, help="the plot's false-abstention bound")
    parser.add_argument("--target-declined", type=float, default=0.80, help="the plot's declined-share target")
    parser.add_argument("--json", type=Path, default=None, help="write the choice and its numbers here")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(run=_run)


async def _collect_one(path: Path, args: argparse.Namespace, seed: int) -> list[dict[str, Any]]:
    dataset = load_qa(path)
    docs, marked = split_heldout(dataset, args.unanswerable_share, seed)
    items = sample_items(marked.items, args.limit, seed, calibration=not args.evaluation_split)
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
            rows.append({"dataset": dataset.name, "seed": seed, "id": item.qid, "question": item.question,
                         "language": item.language, "answerable": item.answerable,
                         "sources": [c.model_dump(include=_SOURCE_FIELDS) for c in result.chunks]})
    return rows


def _collect_in_child(path: Path, args: argparse.Namespace, seed: int) -> list[dict[str, Any]]:
    return asyncio.run(_collect_one(path, args, seed))


def collect(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every dataset under every seed, each in a fresh child process: an embedded gateway's models and stores
    are not all returned to the system when it stops, so one process per seed keeps the memory of one."""
    rows: list[dict[str, Any]] = []
    spawn = multiprocessing.get_context("spawn")
    for path in args.dataset:
        for seed in args.seeds or [args.seed]:
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as child:
                rows += child.submit(_collect_in_child, path, args, seed).result()
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


def features_of(row: dict[str, Any]) -> dict[str, float]:
    """A calibration row's signals: recomputed from its saved sources (so a changed signal needs no new
    retrieval), or, for a row without them, the signals it carries."""
    if "sources" not in row:
        return {f: float(row[f]) for f in FEATURES if f in row}
    sources = [ScoredChunk.model_validate(s) for s in row["sources"]]
    return evidence_features(row["question"], sources, context_weight=CONTEXT_WEIGHT, language=row["language"])


def _model(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """A logistic regression on standardised signals, returned as weights and bias over the raw signals."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(class_weight="balanced", C=c, max_iter=5000).fit((x - mean) / scale, y)
    weights = model.coef_[0] / scale
    return weights, float(model.intercept_[0] - weights @ mean)


def _out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float) -> np.ndarray:
    """Each row's score from a model fitted without its question (grouped folds: a question collected under
    several seeds stays in one fold)."""
    from sklearn.model_selection import GroupKFold

    scores = np.zeros(len(y))
    for train, test in GroupKFold(_FOLDS).split(x, y, groups):
        weights, bias = _model(x[train], y[train], c)
        scores[test] = x[test] @ weights + bias
    return scores


def _held_out_rate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float, max_false: float) -> float:
    scores = _out_of_fold(x, y, groups, c)
    return _rates(scores, y, _threshold(scores, y, max_false))["abstain_unanswerable"]


def _select(x: np.ndarray, y: np.ndarray, groups: np.ndarray, names: Sequence[str], max_false: float,
            c: float) -> tuple[list[str], list[dict[str, Any]]]:
    """Forward selection: add the signal that most raises the out-of-fold share of held-out questions declined
    at ``max_false``; stop when none adds ``_MIN_GAIN``."""
    chosen: list[str] = []
    steps: list[dict[str, Any]] = []
    best = 0.0
    while len(chosen) < len(names):
        tried = {name: _held_out_rate(x[:, [names.index(n) for n in (*chosen, name)]], y, groups, c, max_false)
                 for name in names if name not in chosen}
        name = max(tried, key=lambda n: (tried[n], -names.index(n)))
        if tried[name] < best + _MIN_GAIN:
            break
        chosen.append(name)
        best = tried[name]
        steps.append({"added": name, "abstain_unanswerable_out_of_fold": round(best, 4)})
    return chosen, steps


def fit_language(rows: Sequence[dict[str, Any]], max_false: float, c: float = 1.0) -> dict[str, Any]:
    """One language's evidence score: signals chosen by forward selection on out-of-fold rates, a logistic
    regression over them fitted on every row, and the threshold that keeps false abstentions on the
    answerable rows at ``max_false``."""
    table = [features_of(r) for r in rows]
    names = [f for f in FEATURES if all(f in t for t in table)]
    x = np.array([[t[f] for f in names] for t in table], dtype=float)
    y = np.array([bool(r["answerable"]) for r in rows])
    groups = np.array([str(r.get("id", i)) for i, r in enumerate(rows)])
    chosen, steps = _select(x, y, groups, names, max_false, c)
    columns = [names.index(n) for n in chosen]
    weights, bias = _model(x[:, columns], y, c)
    scores = x[:, columns] @ weights + bias
    threshold = _threshold(scores, y, max_false)
    folded = _out_of_fold(x[:, columns], y, groups, c)
    return {"features": chosen, "C": c,
            "weights": {"bias": round(bias, 4), **{n: round(float(w), 4) for n, w in zip(chosen, weights,
                                                                                          strict=True)}},
            "threshold": round(threshold, 4), **_rates(scores, y, threshold),
            "out_of_fold": _rates(folded, y, _threshold(folded, y, max_false)), "selection": steps}


def choose(rows: Sequence[dict[str, Any]], max_false: float) -> dict[str, Any]:
    """Per language, the evidence score of :func:`fit_language`."""
    out: dict[str, Any] = {"weights": {}, "thresholds": {}, "calibration": {}}
    for language in sorted({r["language"] for r in rows}):
        subset = [r for r in rows if r["language"] == language]
        chosen = fit_language(subset, max_false)
        out["weights"][language] = chosen["weights"]
        out["thresholds"][language] = chosen["threshold"]
        out["calibration"][language] = {"n": len(subset),
                                        "n_unanswerable": sum(not r["answerable"] for r in subset),
                                        "chosen": chosen}
    return out


def _scores(rows: Sequence[dict[str, Any]], weights: dict[str, float]) -> np.ndarray:
    table = [features_of(r) for r in rows]
    return np.array([weights.get("bias", 0.0) + sum(w * t[f] for f, w in weights.items() if f != "bias")
                     for t in table])


def tradeoff(rows: Sequence[dict[str, Any]], choice: dict[str, Any]) -> dict[str, Any]:
    """Per language, the chosen score's declined held-out share against its false abstention share at every
    threshold, and both at the chosen threshold, on ``rows`` (for reporting; nothing is chosen here)."""
    out: dict[str, Any] = {}
    for language in sorted({r["language"] for r in rows}):
        subset = [r for r in rows if r["language"] == language]
        weights = choice["weights"].get(language, choice["weights"].get("en", {}))
        threshold = choice["thresholds"].get(language, choice["thresholds"].get("en", 0.0))
        scores = _scores(subset, weights)
        y = np.array([bool(r["answerable"]) for r in subset])
        points = [_rates(scores, y, t) for t in np.unique(np.concatenate([scores, [np.inf]]))]
        out[language] = {"n": len(subset), "n_unanswerable": int((~y).sum()), "threshold": threshold,
                         "at_threshold": _rates(scores, y, threshold),
                         "curve": sorted({(p["abstain_answerable"], p["abstain_unanswerable"]) for p in points})}
    return out


def _light(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the calibration record keeps it: ids, label and signals (no question or source text)."""
    keep: dict[str, Any] = {k: row[k] for k in ("dataset", "seed", "id", "language", "answerable") if k in row}
    return {**keep, **{k: round(v, 4) for k, v in features_of(row).items()}}


def _run(args: argparse.Namespace) -> int:
    rows = collect(args)
    for path in args.rows_from:
        rows += json.loads(path.read_text(encoding="utf-8"))["rows"]
    if not rows:
        raise SystemExit("ragd train abstention: give --dataset or --rows-from")
    if args.save_rows is not None:
        args.save_rows.parent.mkdir(parents=True, exist_ok=True)
        args.save_rows.write_text(json.dumps({"rows": rows}, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.evaluation_split:
        return 0  # evaluated questions are collected for --curve-rows only; nothing is chosen on them
    choice = choose(rows, args.max_false_abstention)
    choice["config"] = {"datasets": sorted({r["dataset"] for r in rows}), "limit": args.limit,
                        "seeds": sorted({r.get("seed", args.seed) for r in rows}),
                        "unanswerable_share": args.unanswerable_share,
                        "max_false_abstention": args.max_false_abstention, "split": "calibration"}
    print(json.dumps({k: choice[k] for k in ("weights", "thresholds", "calibration")}, indent=1))
    print(f"RAGD_GENERATOR_ABSTAIN_WEIGHTS='{json.dumps(choice['weights'])}'")
    print(f"RAGD_GENERATOR_ABSTAIN_THRESHOLDS='{json.dumps(choice['thresholds'])}'")
    if args.curve_rows:
        evaluated = [r for path in args.curve_rows for r in json.loads(path.read_text(encoding="utf-8"))["rows"]]
        choice["evaluation_tradeoff"] = tradeoff(evaluated, choice)
        print(json.dumps({k: v["at_threshold"] for k, v in choice["evaluation_tradeoff"].items()}))
        if args.curve is not None:
            plot_tradeoff(choice["evaluation_tradeoff"], args.curve, target=(args.target_false, args.target_declined))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        head = json.dumps(choice, indent=1, ensure_ascii=False)[:-2]  # the choice, then one row a line
        lines = ",\n  ".join(json.dumps(_light(r), ensure_ascii=False) for r in rows)
        args.json.write_text(f'{head},\n "rows": [\n  {lines}\n ]\n}}\n', encoding="utf-8")
    return 0
