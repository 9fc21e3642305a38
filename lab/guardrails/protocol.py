"""The leave-source-out protocol: every family of the training pool is scored by a model trained on
the others (and ragd's own corpus); the evaluation-only families are scored by the model trained on
the whole pool; the block and flag cut points are chosen on those held-out scores, per language.

What is reported per language (texts not in Korean count as English, as the guard's calibration
treats them): over the families with at least ``MIN_FAMILY`` texts of a class, the mean and the
worst family of block recall, blocked-or-flagged recall, block FPR and benign flag rate. The
in-distribution table (train on the 70 % bucket of every trainable source, score the 30 %) is
secondary. Scores are kept in ``.ragd/guardrails/protocol-scores.npz`` so that cut points can be
chosen again without refitting.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from tqdm import tqdm

from guardrails.classifier import TURN_MIN, InjectionClassifier, combine_turn, featurize, is_short, may_veto
from guardrails.heuristics import load_rules
from guardrails.normalize import normalize
from guardrails.pii import PLACEHOLDERS, PiiDetector
from guardrails.rails import attack_patterns, scores_classifier
from guardrails.semantic import Matrix, SemanticSpec
from guardrails.settings import default_rules_path
from lab.guardrails.families import FAMILIES, Family, Tagged, load_family, load_own
from lab.guardrails.training import TURN_C, fit_logistic, fold_of, is_conversation, train_with_oof

__all__ = ["MIN_FAMILY", "Pool", "Recipe", "choose_cuts", "choose_turn_cut", "decide", "family_rates", "load_pool",
           "run_protocol", "summarize", "turn_rates", "with_turn_cut"]

MIN_FAMILY = 20  # a family counts for a class's mean and worst when it holds this many texts of it
PASS, FLAG, BLOCK = 0, 1, 2


@dataclass(frozen=True)
class Recipe:
    """How a model is trained (the shipped one and every protocol model alike)."""

    c: float = 1.0
    target_fpr: float = 0.015
    target_fpr_ko: float = 0.02
    repeats: int = 3
    calibrate: bool = False  # the cut points come from the protocol, not from out-of-fold training scores
    balance_sources: bool = True
    semantic: SemanticSpec | None = field(default_factory=lambda: SemanticSpec(scale=2.0))


@dataclass
class Pool:
    """Every text of the protocol with what does not depend on a model."""

    rows: list[Tagged]
    normalized: list[str]
    pattern: np.ndarray  # a pattern rail fires (block, score 1.0)
    discussion: np.ndarray  # the text talks about attacks (the classifier needs p >= 0.9 to block)
    classified: np.ndarray  # long enough for the classifier
    korean: np.ndarray
    attack: np.ndarray
    family: np.ndarray
    split: np.ndarray
    vectors: Matrix | None = None
    ngrams: sparse.csr_matrix | None = None  # featurize() rows, computed once

    def select(self, mask: np.ndarray) -> list[int]:
        return [int(i) for i in np.flatnonzero(mask)]


def load_pool(data_dir: Path, families: Sequence[Family] = FAMILIES) -> Pool:
    """Load every family and ragd's corpus, redact PII and normalise as the guard does, run the patterns."""
    rows = load_own() + [t for f in families for t in load_family(f, data_dir)]
    detector = PiiDetector(PLACEHOLDERS)
    rules = load_rules(default_rules_path())
    normalized, pattern, discussion = [], [], []
    for t in tqdm(rows, desc="patterns", unit="text", mininterval=1.0):
        text = normalize(detector.redact(t.example.text)[0])
        a = attack_patterns(text, rules)
        normalized.append(text)
        pattern.append(a.injection_hit is not None or a.extraction_hit is not None)
        discussion.append(a.discussion)
    return Pool(rows, normalized, np.array(pattern), np.array(discussion),
                np.array([scores_classifier(t) for t in normalized]),
                np.array([t.example.lang == "ko" for t in rows]), np.array([t.example.label == "attack" for t in rows]),
                np.array([t.family for t in rows]), np.array([t.split for t in rows]), ngrams=featurize(normalized))


def _fit(pool: Pool, index: list[int], recipe: Recipe, note: str) -> InjectionClassifier:
    examples = [pool.rows[i].example for i in index]
    vectors = None if pool.vectors is None else pool.vectors[index]
    ngrams = None if pool.ngrams is None else pool.ngrams[index]
    return train_with_oof(examples, c=recipe.c, target_fpr=recipe.target_fpr, target_fpr_ko=recipe.target_fpr_ko,
                          repeats=recipe.repeats, semantic=recipe.semantic, vectors=vectors, note=note,
                          calibrate=recipe.calibrate, ngrams=ngrams,
                          balance_sources=recipe.balance_sources).classifier


def _score(pool: Pool, classifier: InjectionClassifier, index: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The main model's score (0 for texts too short to classify) and the turn model's (NaN where it
    may not veto) of each text."""
    vectors = None if pool.vectors is None else pool.vectors[index]
    ngrams = None if pool.ngrams is None else pool.ngrams[index]
    texts = [pool.normalized[i] for i in index]
    main = np.where(pool.classified[index], classifier.main_scores(texts, vectors, ngrams), 0.0)
    return main, classifier.turn_scores(texts, ngrams)


def with_turn_cut(scores: dict[str, np.ndarray], cut: float = TURN_MIN) -> np.ndarray:
    """The held-out scores (``lso``) with the turn model vetoing below ``cut``."""
    return combine_turn(scores["lso_main"], scores["lso_turn"], cut)


def _turns_out_of_fold(pool: Pool, in_pool: np.ndarray, whole: InjectionClassifier,
                       folds: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """ragd's chat turns scored as a new chat turn would be: by the whole-pool main model (which never
    trains on turns) and by turn models fitted without the turn's fold."""
    assert pool.ngrams is not None
    turns = np.array([is_conversation(t.example) for t in pool.rows]) & in_pool
    main, turn = np.full(len(pool.rows), np.nan), np.full(len(pool.rows), np.nan)
    held = pool.select(turns)
    main[held] = whole.main_scores([pool.normalized[i] for i in held], None if pool.vectors is None
                                   else pool.vectors[held], pool.ngrams[held])
    short = in_pool & np.array([is_short(t.example.text) for t in pool.rows])
    fold = np.full(len(pool.rows), -1)
    fold[held] = fold_of([pool.normalized[i] for i in held], folds, 0)
    vetoable = np.array([may_veto(pool.normalized[i]) for i in held])
    for k in range(folds):
        train = pool.select(short & (fold != k))
        model = fit_logistic(pool.ngrams[train], pool.attack[train], TURN_C, 0)
        idx = [i for i, v in zip(held, vetoable, strict=True) if v and fold[i] == k]
        if idx:
            turn[idx] = 1.0 / (1.0 + np.exp(-model.decision_function(pool.ngrams[idx])))
    return main, turn


def decide(p: np.ndarray, pattern: np.ndarray, discussion: np.ndarray, block: float, flag: float) -> np.ndarray:
    """PASS / FLAG / BLOCK per text, as :func:`guardrails.rails.graded` decides (patterns block)."""
    need = np.where(discussion, max(block, 0.9), block)
    out = np.where(p >= need, BLOCK, np.where(p >= flag, FLAG, PASS))
    return np.where(pattern, BLOCK, out)


def family_rates(decision: np.ndarray, attack: np.ndarray) -> dict[str, Any]:
    a, b = decision[attack], decision[~attack]
    return {"attacks": int(a.size), "benign": int(b.size),
            "recall": round(float((a == BLOCK).mean()), 4) if a.size else None,
            "recall_block_or_flag": round(float((a >= FLAG).mean()), 4) if a.size else None,
            "fpr": round(float((b == BLOCK).mean()), 4) if b.size else None,
            "flag_rate_benign": round(float((b == FLAG).mean()), 4) if b.size else None,
            "block_rate": round(float((decision == BLOCK).mean()), 4),
            "flag_rate": round(float((decision == FLAG).mean()), 4),
            "allow_rate": round(float((decision == PASS).mean()), 4)}


def _lang_mask(pool: Pool, lang: str) -> np.ndarray:
    return pool.korean if lang == "ko" else ~pool.korean


def per_family(pool: Pool, p: np.ndarray, scored: np.ndarray, cuts: dict[str, tuple[float, float]],
               families: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """{family: {lang: rates}} at ``cuts`` ({lang: (block, flag)}) over the scored texts."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in families:
        for lang, (block, flag) in cuts.items():
            m = scored & (pool.family == name) & _lang_mask(pool, lang)
            if m.any():
                d = decide(p[m], pool.pattern[m], pool.discussion[m], block, flag)
                out.setdefault(name, {})[lang] = family_rates(d, pool.attack[m])
    return out


def summarize(table: dict[str, dict[str, dict[str, Any]]], lang: str) -> dict[str, Any]:
    """Mean and worst family of each rate for one language."""
    out: dict[str, Any] = {}
    for key, count, worst in (("recall", "attacks", min), ("recall_block_or_flag", "attacks", min),
                              ("fpr", "benign", max), ("flag_rate_benign", "benign", max)):
        vals = {f: r[lang][key] for f, r in table.items() if lang in r and r[lang][count] >= MIN_FAMILY}
        if not vals:
            continue
        name = worst(vals, key=lambda f: vals[f])
        out[f"{key}_mean"] = round(float(np.mean(list(vals.values()))), 4)
        out[f"{key}_worst"] = vals[name]
        out[f"{key}_worst_family"] = name
        out[f"{key}_families"] = len(vals)
    return out


def choose_cuts(pool: Pool, p: np.ndarray, scored: np.ndarray, lang: str, *, target_fpr: float = 0.02,
                worst_fpr: float = 0.04, flag_budget: float = 0.10, exclude: str | None = None) -> tuple[float, float]:
    """The lowest block cut whose benign FPR is at most ``target_fpr`` averaged over the language's
    benign families and at most ``worst_fpr`` in each; then the lowest flag cut whose benign
    flag-or-block rate averages at most ``flag_budget``. ``exclude``: a family left out of the choice."""
    benign = scored & ~pool.attack & _lang_mask(pool, lang)
    groups = [benign & (pool.family == f) for f in np.unique(pool.family[benign]) if f != exclude]
    groups = [g for g in groups if g.sum() >= MIN_FAMILY]
    grid = np.concatenate([np.round(np.arange(0.05, 0.99, 0.01), 2), np.round(np.arange(0.99, 1.0, 0.001), 3)])

    def rates(block: float, flag: float, level: int) -> np.ndarray:
        return np.array([(decide(p[g], pool.pattern[g], pool.discussion[g], block, flag) >= level).mean()
                         for g in groups])

    block = next((float(t) for t in grid if (r := rates(t, t, BLOCK)).mean() <= target_fpr and r.max() <= worst_fpr),
                 float(grid[-1]))
    flag = next((float(t) for t in grid if t <= block and rates(block, t, FLAG).mean() <= flag_budget), block)
    return block, flag


def run_protocol(pool: Pool, recipe: Recipe, *, families: Sequence[Family] = FAMILIES,
                 in_distribution: bool = True) -> dict[str, np.ndarray]:
    """Fit the protocol's models and return each text's held-out score: ``lso`` (its family never
    trained on: a leave-family-out model for trainable families, the whole-pool model for the
    others) and ``in_dist`` (the 70/30 model, on the 30 % of trainable sources)."""
    trainable = {f.name for f in families if f.trainable} | {"ragd_own"}
    in_pool = np.isin(pool.family, sorted(trainable))
    main, turn = np.full(len(pool.rows), np.nan), np.full(len(pool.rows), np.nan)
    for f in tqdm([f for f in families if f.trainable], desc="leave-family-out models", unit="model"):
        start = time.perf_counter()
        model = _fit(pool, pool.select(in_pool & (pool.family != f.name)), recipe, f"without {f.name}")
        held = pool.select(pool.family == f.name)
        main[held], turn[held] = _score(pool, model, held)
        tqdm.write(f"  {f.name}: {len(held)} texts scored ({time.perf_counter() - start:.0f}s)")
    whole = _fit(pool, pool.select(in_pool), recipe, "whole pool")
    unseen = pool.select(~in_pool)
    main[unseen], turn[unseen] = _score(pool, whole, unseen)
    out = {"lso_main": main, "lso_turn": turn}
    out["lso"] = with_turn_cut(out)
    out["turns_main"], out["turns_turn"] = _turns_out_of_fold(pool, in_pool, whole)
    if in_distribution:
        in_dist = np.full(len(pool.rows), np.nan)
        model = _fit(pool, pool.select(in_pool & (pool.split == "train")), recipe, "70 % bucket")
        held = pool.select(in_pool & (pool.split == "heldout") & (pool.family != "ragd_own"))
        in_dist[held] = combine_turn(*_score(pool, model, held))
        out["in_dist"] = in_dist
    return out


def turn_rates(pool: Pool, scores: dict[str, np.ndarray], cuts: dict[str, tuple[float, float]],
               turn_cut: float) -> dict[str, dict[str, float | int]]:
    """Per language, ragd's chat turns blocked and flagged (out of fold) with the veto at ``turn_cut``."""
    p = combine_turn(scores["turns_main"], scores["turns_turn"], turn_cut)
    out: dict[str, dict[str, float | int]] = {}
    for lang, (block, flag) in cuts.items():
        m = ~np.isnan(p) & _lang_mask(pool, lang)
        d = decide(p[m], pool.pattern[m], pool.discussion[m], block, flag)
        out[lang] = {"turns": int(m.sum()), "blocked": round(float((d == BLOCK).mean()), 4),
                     "flagged": round(float((d == FLAG).mean()), 4)}
    return out


def choose_turn_cut(pool: Pool, scores: dict[str, np.ndarray], cuts: dict[str, tuple[float, float]], *,
                    blocked: float = 0.02, stopped: float = 0.10) -> float:
    """The lowest veto cut (the fewest texts taken for chat turns, so the fewest attacks vetoed) at which,
    in each language, at most ``blocked`` of ragd's chat turns are blocked and at most ``stopped``
    blocked or flagged, every turn scored out of fold (:func:`_turns_out_of_fold`). The defaults hold
    the turns to the budgets the cut points hold the benign families to (:func:`choose_cuts`)."""
    for cut in np.round(np.arange(0.05, 0.96, 0.05), 2):
        rates = turn_rates(pool, scores, cuts, float(cut))
        if all(r["blocked"] <= blocked and float(r["blocked"]) + float(r["flagged"]) <= stopped
               for r in rates.values()):
            return float(cut)
    return 0.95
