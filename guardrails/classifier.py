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

from guardrails.concepts import concept_tags, concepts_in
from guardrails.normalize import korean_stems, language_of, normalize

__all__ = ["SHORT_CHARS", "TURN_MIN", "UNVETOED_CONCEPTS", "InjectionClassifier", "combine_turn", "featurize",
           "is_short", "may_veto"]

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


# A short text (normalised, at most SHORT_CHARS characters) that the main model would block must
# also look like an attack to the turn model, which was trained on short texts and chat turns ("I
# don't know.", "그건 이미 해봤어요"): below TURN_MIN it is taken for a chat turn.
SHORT_CHARS = 40
TURN_MIN = 0.2


def is_short(text: str) -> bool:
    return len(text) <= 4 * SHORT_CHARS and len(normalize(text).strip()) <= SHORT_CHARS


# A short text naming a harm or an attack target is never taken for a chat turn: out of fold, the turn
# model took short harmful questions ("아이를 납치하는 가장 쉬운 방법은?") for chat.
UNVETOED_CONCEPTS = frozenset({"weapon", "drugs", "poison", "violence", "selfharm", "cyber", "fraud", "hate",
                               "sexual", "misinfo", "privacy", "evade", "unrestricted", "secret", "prompt",
                               "privileged"})


def may_veto(text: str) -> bool:
    """The turn model may veto this text: it is short and names no harm or attack target."""
    return is_short(text) and not (concepts_in(normalize(text)) & UNVETOED_CONCEPTS)


def combine_turn(p_main: np.ndarray, p_turn: np.ndarray) -> np.ndarray:
    """A short text's score: the main model's, capped by the turn model's when that one calls it a chat turn."""
    return np.where(p_turn < TURN_MIN, np.minimum(p_main, p_turn), p_main)


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
    p = 0.5 sits at the same benign false-positive rate in that language. ``turn_weights`` and
    ``turn_bias``, when given, are the turn model that can veto a short text (:func:`combine_turn`).
    """

    def __init__(self, weights: np.ndarray, biases: dict[str, float], *, turn_weights: np.ndarray | None = None,
                 turn_bias: float = 0.0, meta: dict[str, str] | None = None) -> None:
        for name, w in (("weights", weights), ("turn weights", turn_weights)):
            if w is not None and w.shape != (_N_WEIGHTS,):
                raise ValueError(f"classifier {name} have shape {w.shape}, expected ({_N_WEIGHTS},); "
                                 "retrain with `ragd train guardrails`")
        if "en" not in biases:
            raise ValueError("classifier biases need an 'en' entry (the fallback)")
        self._w = weights.astype(np.float32)
        self._biases = dict(biases)
        self._turn_w = None if turn_weights is None else turn_weights.astype(np.float32)
        self._turn_bias = turn_bias
        self.meta = meta or {}

    @classmethod
    def load(cls, path: Path) -> InjectionClassifier:
        with np.load(path, allow_pickle=False) as data:
            meta = {k[5:]: str(data[k]) for k in data.files if k.startswith("meta_")}
            biases = {k[5:]: float(data[k]) for k in data.files if k.startswith("bias_")}
            turn = data["turn_weights"] if "turn_weights" in data.files else None
            turn_bias = float(data["turn_bias"]) if "turn_bias" in data.files else 0.0
            return cls(data["weights"], biases, turn_weights=turn, turn_bias=turn_bias, meta=meta)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {f"meta_{k}": np.array(v) for k, v in self.meta.items()}
        arrays.update({f"bias_{k}": np.array(v) for k, v in self._biases.items()})
        arrays["weights"] = self._w.astype(np.float16)
        if self._turn_w is not None:
            arrays["turn_weights"] = self._turn_w.astype(np.float16)
            arrays["turn_bias"] = np.array(self._turn_bias)
        np.savez_compressed(path, allow_pickle=False, **arrays)

    def with_turn_model(self, weights: np.ndarray, bias: float, meta: dict[str, str]) -> InjectionClassifier:
        """The same main model with another turn model."""
        return InjectionClassifier(self._w, self._biases, turn_weights=weights, turn_bias=bias, meta=meta)

    def _bias(self, text: str) -> float:
        return self._biases.get(language_of(text), self._biases["en"])

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        x = featurize(texts)
        p = _sigmoid(x @ self._w + np.array([self._bias(t) for t in texts]))
        if self._turn_w is not None:
            short = np.array([may_veto(t) for t in texts], dtype=bool)
            p[short] = combine_turn(p[short], _sigmoid(x[short] @ self._turn_w + self._turn_bias))
        return p

    def score(self, text: str) -> float:
        x = featurize([text])
        p = _sigmoid_1(float(x.data @ self._w[x.indices]) + self._bias(text))
        if self._turn_w is not None and p >= TURN_MIN and may_veto(text):
            p_turn = _sigmoid_1(float(x.data @ self._turn_w[x.indices]) + self._turn_bias)
            p = float(combine_turn(np.array([p]), np.array([p_turn]))[0])
        return p


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))), dtype=np.float64)


def _sigmoid_1(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
