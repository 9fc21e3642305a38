"""Recipe variants on the leave-source-out protocol, fast: the main model only (no turn model, no
calibration), n-gram rows and semantic vectors computed once; each variant fits one model per
trainable family plus the whole-pool model, picks cut points on the held-out scores and prints the
per-language mean and worst family. ``python -m lab.guardrails.sweep``."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from guardrails.semantic import SemanticSpec
from lab.guardrails.data import default_data_dir
from lab.guardrails.families import FAMILIES
from lab.guardrails.protocol import Pool, choose_cuts, load_pool, per_family, summarize
from lab.guardrails.training import is_conversation, source_weights
from lab.guardrails.vectors import VectorCache

__all__ = ["Variant", "run_variant"]


@dataclass(frozen=True)
class Variant:
    c: float = 64.0
    scale: float = 1.0
    balance_sources: bool = False
    ngrams: bool = True


def _features(pool: Pool, v: Variant) -> sparse.csr_matrix:
    assert pool.ngrams is not None and pool.vectors is not None
    blocks = [pool.ngrams] if v.ngrams else []
    blocks.append(sparse.csr_matrix(pool.vectors * v.scale))
    return sparse.hstack(blocks, format="csr")


def _fit_score(x: sparse.csr_matrix, pool: Pool, train: np.ndarray, test: np.ndarray, v: Variant) -> np.ndarray:
    sources = [pool.rows[i].example.source for i in np.flatnonzero(train)]
    y = pool.attack[train]
    if v.balance_sources:
        model = LogisticRegression(C=v.c, max_iter=3000, solver="liblinear")
        model.fit(x[train], y, sample_weight=source_weights(sources, y))
    else:
        model = LogisticRegression(C=v.c, class_weight="balanced", max_iter=3000, solver="liblinear")
        model.fit(x[train], y)
    return np.asarray(model.predict_proba(x[test])[:, 1])


def run_variant(pool: Pool, v: Variant, *, target_fpr: float = 0.02, worst_fpr: float = 0.04,
                flag_budget: float = 0.10) -> tuple[np.ndarray, dict[str, object]]:
    x = _features(pool, v)
    turn = np.array([is_conversation(t.example) for t in pool.rows])
    trainable = sorted({f.name for f in FAMILIES if f.trainable} | {"ragd_own"})
    in_pool = np.isin(pool.family, trainable)
    p = np.full(len(pool.rows), np.nan)
    for f in [f for f in FAMILIES if f.trainable]:
        held = pool.family == f.name
        p[held] = _fit_score(x, pool, in_pool & ~held & ~turn, held, v)
    p[~in_pool] = _fit_score(x, pool, in_pool & ~turn, ~in_pool, v)
    p = np.where(pool.classified, p, 0.0)
    scored = ~np.isnan(p)
    cuts = {lang: choose_cuts(pool, p, scored, lang, target_fpr=target_fpr, worst_fpr=worst_fpr,
                              flag_budget=flag_budget) for lang in ("en", "ko")}
    table = per_family(pool, p, scored, cuts, [f.name for f in FAMILIES])
    return p, {"variant": asdict(v), "cuts": cuts, "summary": {lang: summarize(table, lang) for lang in cuts},
               "families": table}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", required=True, help="JSON list of Variant fields")
    parser.add_argument("--out", default=".ragd/guardrails/sweep.jsonl")
    parser.add_argument("--target-fpr", type=float, default=0.02, help="Block cut: mean benign family FPR.")
    parser.add_argument("--worst-fpr", type=float, default=0.04, help="Block cut: each benign family's FPR.")
    parser.add_argument("--flag-budget", type=float, default=0.10, help="Flag cut: mean benign flag-or-block rate.")
    args = parser.parse_args()
    pool = load_pool(default_data_dir())
    pool.vectors = VectorCache(SemanticSpec()).vectors(pool.normalized)
    for fields in json.loads(args.variants):
        v = Variant(**fields)
        start = time.perf_counter()
        p, result = run_variant(pool, v, target_fpr=args.target_fpr, worst_fpr=args.worst_fpr,
                                flag_budget=args.flag_budget)
        result["seconds"] = round(time.perf_counter() - start)
        np.save(Path(args.out).with_suffix(f".{abs(hash(str(v))) % 10**8}.npy"), p)
        with Path(args.out).open("a", encoding="utf-8") as f:
            f.write(json.dumps(result, ensure_ascii=False, default=list) + "\n")
        s = result["summary"]
        print(v, result["cuts"], result["seconds"], "s", flush=True)
        for lang in ("en", "ko"):
            r = s[lang]  # type: ignore[index]
            print(f"  {lang}: recall {r.get('recall_mean')} (worst {r.get('recall_worst')} "
                  f"{r.get('recall_worst_family')}), b+f {r.get('recall_block_or_flag_mean')} "
                  f"(worst {r.get('recall_block_or_flag_worst')}), fpr {r.get('fpr_mean')} (worst "
                  f"{r.get('fpr_worst')} {r.get('fpr_worst_family')}), flag {r.get('flag_rate_benign_mean')}",
                  flush=True)


if __name__ == "__main__":
    main()
