"""Training of the injection classifier (used by ``ragd train guardrails``).

The decision threshold is set on out-of-fold scores of the training data, per language: each
language's bias is shifted so that p = 0.5 leaves ``target_fpr`` of its benign training texts
above it. The held-out 30 % is never used, neither for the weights nor for the threshold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from guardrails.classifier import InjectionClassifier, featurize
from guardrails.data import Example

__all__ = ["train_classifier"]


def _fit(x: object, y: np.ndarray, c: float, seed: int) -> LogisticRegression:
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, solver="liblinear", random_state=seed)
    return model.fit(x, y)


def _out_of_fold_logits(x: object, y: np.ndarray, c: float, seed: int, folds: int) -> np.ndarray:
    logits = np.zeros(len(y))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(np.zeros(len(y)), y):
        model = _fit(x[train_idx], y[train_idx], c, seed)  # type: ignore[index]
        logits[test_idx] = model.decision_function(x[test_idx])  # type: ignore[index]
    return logits


def train_classifier(examples: Sequence[Example], *, c: float = 64.0, seed: int = 0, folds: int = 5,
                     target_fpr: float = 0.015, note: str = "") -> InjectionClassifier:
    """Fit a class-balanced logistic regression on hashed n-grams and calibrate its 0.5 point."""
    texts = [e.text for e in examples]
    labels = np.array([e.label == "attack" for e in examples])
    x = featurize(texts)
    korean = np.array([e.lang == "ko" for e in examples])
    oof = _out_of_fold_logits(x, labels, c, seed, folds)
    model = _fit(x, labels, c, seed)
    meta = {"examples": str(len(examples)), "attacks": str(int(labels.sum())), "c": str(c),
            "target_fpr": str(target_fpr), "sources": ",".join(sorted(Counter(e.source for e in examples))),
            "note": note}
    biases: dict[str, float] = {}
    for lang, mask in (("en", ~korean), ("ko", korean)):
        cut = float(np.quantile(oof[~labels & mask], 1.0 - target_fpr))
        biases[lang] = float(model.intercept_[0]) - cut
        meta[f"oof_recall_at_target_{lang}"] = f"{(oof[labels & mask] > cut).mean():.4f}"
    return InjectionClassifier(model.coef_[0], biases, meta=meta)
