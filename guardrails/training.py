"""Training of the injection classifier (used by ``ragd train guardrails``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression

from guardrails.classifier import InjectionClassifier, featurize
from guardrails.data import Example

__all__ = ["train_classifier"]


def train_classifier(examples: Sequence[Example], *, c: float = 4.0, seed: int = 0,
                     note: str = "") -> InjectionClassifier:
    """Fit a class-balanced logistic regression on hashed n-grams of ``examples``."""
    texts = [e.text for e in examples]
    labels = np.array([e.label == "attack" for e in examples])
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, solver="liblinear", random_state=seed)
    model.fit(featurize(texts), labels)
    sources = Counter(e.source for e in examples)
    meta = {"examples": str(len(examples)), "attacks": str(int(labels.sum())), "c": str(c),
            "sources": ",".join(sorted(sources)), "note": note}
    return InjectionClassifier(model.coef_[0], float(model.intercept_[0]), meta=meta)
