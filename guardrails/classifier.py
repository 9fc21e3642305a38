"""A small bilingual injection/jailbreak classifier: hashed character and word n-grams into a
logistic regression. Inference is a sparse dot product (well under a millisecond); the weights
are a ~2 MB ``.npz`` committed with ragd and rebuilt by ``ragd train guardrails``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from guardrails.concepts import concept_tags
from guardrails.normalize import korean_stems, language_of, normalize

__all__ = ["InjectionClassifier", "featurize"]

_N_FEATURES = 2**18
_CHAR = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), n_features=_N_FEATURES,
                          alternate_sign=False, lowercase=True, norm="l2")
_WORD = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=_N_FEATURES,
                          alternate_sign=False, lowercase=True, norm="l2", token_pattern=r"(?u)\b\w+\b")
_N_CONCEPT_FEATURES = 2**14
_CONCEPT = HashingVectorizer(analyzer="word", n_features=_N_CONCEPT_FEATURES, alternate_sign=False,
                             lowercase=False, norm="l2", token_pattern=r"\S+")
_N_WEIGHTS = 2 * _N_FEATURES + _N_CONCEPT_FEATURES


_HEAD, _TAIL = 1500, 500


def _clip(text: str) -> str:
    """Long prompts are scored on their head and tail: where jailbreak framing and payloads sit."""
    return text if len(text) <= _HEAD + _TAIL else text[:_HEAD] + " " + text[-_TAIL:]


def featurize(texts: Sequence[str]) -> sparse.csr_matrix:
    """Normalised text -> [char n-grams | word n-grams of Korean stems | bilingual concept tags], each block
    l2-normalised."""
    norm = [normalize(_clip(t)) for t in texts]
    tags = [concept_tags(t) for t in norm]
    words = [korean_stems(t) for t in norm]
    return sparse.hstack([_CHAR.transform(norm), _WORD.transform(words), _CONCEPT.transform(tags)], format="csr")


class InjectionClassifier:
    """P(attack | text) from a linear model over :func:`featurize` features.

    ``biases`` holds one intercept per language ("en" is the fallback): each is calibrated so that
    p = 0.5 sits at the same benign false-positive rate in that language.
    """

    def __init__(self, weights: np.ndarray, biases: dict[str, float], *, meta: dict[str, str] | None = None) -> None:
        if weights.shape != (_N_WEIGHTS,):
            raise ValueError(f"classifier weights have shape {weights.shape}, expected ({_N_WEIGHTS},); "
                             "retrain with `ragd train guardrails`")
        if "en" not in biases:
            raise ValueError("classifier biases need an 'en' entry (the fallback)")
        self._w = weights.astype(np.float32)
        self._biases = dict(biases)
        self.meta = meta or {}

    @classmethod
    def load(cls, path: Path) -> InjectionClassifier:
        with np.load(path, allow_pickle=False) as data:
            meta = {k[5:]: str(data[k]) for k in data.files if k.startswith("meta_")}
            biases = {k[5:]: float(data[k]) for k in data.files if k.startswith("bias_")}
            return cls(data["weights"], biases, meta=meta)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {f"meta_{k}": np.array(v) for k, v in self.meta.items()}
        arrays.update({f"bias_{k}": np.array(v) for k, v in self._biases.items()})
        arrays["weights"] = self._w.astype(np.float16)
        np.savez_compressed(path, allow_pickle=False, **arrays)

    def _bias(self, text: str) -> float:
        return self._biases.get(language_of(text), self._biases["en"])

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        logits = featurize(texts) @ self._w + np.array([self._bias(t) for t in texts])
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)

    def score(self, text: str) -> float:
        x = featurize([text])
        logit = float(x.data @ self._w[x.indices]) + self._bias(text)
        return 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))
