"""Training of the injection classifier (used by ``ragd train guardrails``).

The decision threshold is set on out-of-fold scores of the training data, per language: each
language's bias is shifted so that p = 0.5 leaves ``target_fpr`` of its benign training texts
above it. The held-out 30 % is never used, neither for the weights nor for the threshold.

Conversational turns (``task`` starting with ``conversation``: "I don't know.", "네 감사합니다") are
not trained into the main model, where they cost recall on short imperative attacks in both
languages. They train the *turn model* instead: a second logistic regression over the same
features, fitted on the short training texts (see :data:`~guardrails.classifier.SHORT_CHARS`) and
the turns, whose only use is to veto a short text that it takes for a chat turn (see
:class:`~guardrails.classifier.InjectionClassifier`).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from guardrails.classifier import InjectionClassifier, combine_turn, featurize, is_short
from guardrails.data import Example, text_key

__all__ = ["Trained", "is_conversation", "train_classifier", "train_with_oof"]


def is_conversation(example: Example) -> bool:
    return example.task.startswith("conversation")


@dataclass(frozen=True)
class Trained:
    """A trained classifier and, per training example, the score it would get from a model that never
    saw it (out-of-fold; the turns are scored by the main model fitted without them): the dev
    protocol runs the whole rail on these."""

    classifier: InjectionClassifier
    oof_scores: np.ndarray


def _fit(x: object, y: np.ndarray, c: float, seed: int) -> LogisticRegression:
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, solver="liblinear", random_state=seed)
    return model.fit(x, y)


def _fold_of(texts: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Each text's fold, from a hash of the text: adding examples leaves every other example in its fold,
    so two training sets that differ by a corpus file give paired out-of-fold numbers."""
    return np.array([zlib.crc32(f"{seed}:{text_key(t)}".encode()) % folds for t in texts])


def _out_of_fold_logits(x: object, y: np.ndarray, fold: np.ndarray, c: float, seed: int) -> np.ndarray:
    logits = np.zeros(len(y))
    for k in np.unique(fold):
        train_idx, test_idx = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        model = _fit(x[train_idx], y[train_idx], c, seed)  # type: ignore[index]
        logits[test_idx] = model.decision_function(x[test_idx])  # type: ignore[index]
    return logits


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))), dtype=np.float64)


def train_classifier(examples: Sequence[Example], *, c: float = 64.0, seed: int = 0, folds: int = 5,
                     target_fpr: float = 0.015, note: str = "") -> InjectionClassifier:
    """Fit a class-balanced logistic regression on hashed n-grams and calibrate its 0.5 point."""
    return train_with_oof(examples, c=c, seed=seed, folds=folds, target_fpr=target_fpr, note=note).classifier


def train_with_oof(examples: Sequence[Example], *, c: float = 64.0, seed: int = 0, folds: int = 5,
                   target_fpr: float = 0.015, note: str = "") -> Trained:
    """:func:`train_classifier`, also returning every example's out-of-fold score."""
    labels = np.array([e.label == "attack" for e in examples])
    korean = np.array([e.lang == "ko" for e in examples])
    turn = np.array([is_conversation(e) for e in examples])
    if (labels & turn).any():
        raise ValueError("conversational turns must be labelled benign")
    x = featurize([e.text for e in examples])
    fold = _fold_of([e.text for e in examples], folds, seed)
    main = np.flatnonzero(~turn)
    oof_main = _out_of_fold_logits(x[main], labels[main], fold[main], c, seed)
    model = _fit(x[main], labels[main], c, seed)
    logits = np.zeros(len(examples))
    logits[main] = oof_main
    if turn.any():
        logits[turn] = model.decision_function(x[turn])
    meta = {"examples": str(len(examples)), "attacks": str(int(labels.sum())), "c": str(c),
            "target_fpr": str(target_fpr), "sources": ",".join(sorted(Counter(e.source for e in examples))),
            "conversation_turns": str(int(turn.sum())), "note": note}
    biases: dict[str, float] = {}
    p_main = np.zeros(len(examples))
    for lang, mask in (("en", ~korean), ("ko", korean)):
        cut = float(np.quantile(logits[~labels & mask & ~turn], 1.0 - target_fpr))
        biases[lang] = float(model.intercept_[0]) - cut
        p_main[mask] = _sigmoid(logits[mask] - cut)
    short = np.flatnonzero(np.array([is_short(e.text) for e in examples]))
    turn_model = _fit(x[short], labels[short], c, seed)
    p_turn = _sigmoid(_out_of_fold_logits(x[short], labels[short], fold[short], c, seed))
    scores = p_main.copy()
    scores[short] = combine_turn(p_main[short], p_turn)
    for lang, mask in (("en", ~korean), ("ko", korean)):
        meta[f"oof_recall_at_target_{lang}"] = f"{(scores[labels & mask] >= 0.5).mean():.4f}"
        meta[f"oof_fpr_{lang}"] = f"{(scores[~labels & mask & ~turn] >= 0.5).mean():.4f}"
        meta[f"oof_conversation_fpr_{lang}"] = f"{(scores[mask & turn] >= 0.5).mean():.4f}"
    meta["short_texts"] = str(len(short))
    classifier = InjectionClassifier(model.coef_[0], biases, turn_weights=turn_model.coef_[0],
                                     turn_bias=float(turn_model.intercept_[0]), meta=meta)
    return Trained(classifier, scores)
