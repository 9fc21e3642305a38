"""Training of the injection classifier (used by ``ragd train guardrails``).

The decision threshold is set on out-of-fold scores of the training data, per language: each
language's bias is shifted so that p = 0.5 leaves ``target_fpr`` of its benign training texts
above it. The held-out 30 % is never used, neither for the weights nor for the threshold.

Conversational turns (``task`` starting with ``conversation``: "I don't know.", "네 감사합니다") are
benign training texts with a lower sample weight, so that they teach the model what a chat reply
looks like without pulling down every short imperative; they are left out of the calibration
pool, so the threshold keeps meaning the same false-positive rate on benign questions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from guardrails.classifier import InjectionClassifier, featurize
from guardrails.data import Example

__all__ = ["CONVERSATION_WEIGHT", "is_conversation", "out_of_fold_logits", "sample_weights", "train_classifier"]


CONVERSATION_WEIGHT = 0.1


def is_conversation(example: Example) -> bool:
    return example.task.startswith("conversation")


def sample_weights(examples: Sequence[Example]) -> np.ndarray:
    return np.array([CONVERSATION_WEIGHT if is_conversation(e) else 1.0 for e in examples])


def _fit(x: object, y: np.ndarray, w: np.ndarray, c: float, seed: int) -> LogisticRegression:
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, solver="liblinear", random_state=seed)
    return model.fit(x, y, sample_weight=w)


def out_of_fold_logits(x: object, y: np.ndarray, w: np.ndarray, c: float, seed: int, folds: int) -> np.ndarray:
    logits = np.zeros(len(y))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(np.zeros(len(y)), y):
        model = _fit(x[train_idx], y[train_idx], w[train_idx], c, seed)  # type: ignore[index]
        logits[test_idx] = model.decision_function(x[test_idx])  # type: ignore[index]
    return logits


def train_classifier(examples: Sequence[Example], *, c: float = 64.0, seed: int = 0, folds: int = 5,
                     target_fpr: float = 0.015, note: str = "") -> InjectionClassifier:
    """Fit a class-balanced logistic regression on hashed n-grams and calibrate its 0.5 point."""
    texts = [e.text for e in examples]
    labels = np.array([e.label == "attack" for e in examples])
    x = featurize(texts)
    korean = np.array([e.lang == "ko" for e in examples])
    conversation = np.array([is_conversation(e) for e in examples])
    weights = sample_weights(examples)
    oof = out_of_fold_logits(x, labels, weights, c, seed, folds)
    model = _fit(x, labels, weights, c, seed)
    meta = {"examples": str(len(examples)), "attacks": str(int(labels.sum())), "c": str(c),
            "target_fpr": str(target_fpr), "sources": ",".join(sorted(Counter(e.source for e in examples))),
            "note": note}
    biases: dict[str, float] = {}
    for lang, mask in (("en", ~korean), ("ko", korean)):
        cut = float(np.quantile(oof[~labels & mask & ~conversation], 1.0 - target_fpr))
        biases[lang] = float(model.intercept_[0]) - cut
        meta[f"oof_recall_at_target_{lang}"] = f"{(oof[labels & mask] > cut).mean():.4f}"
        turns = oof[~labels & mask & conversation]
        meta[f"oof_conversation_fpr_{lang}"] = f"{(turns > cut).mean():.4f}" if len(turns) else "-"
    return InjectionClassifier(model.coef_[0], biases, meta=meta)
