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

The main model also reads each text's semantic vector (:mod:`guardrails.semantic`, on by default):
the vectors of the training texts are computed once (~1 min for ~9k texts on 2 cores, with a
progress bar) and appended to the n-gram features, scaled by ``SemanticSpec.scale``.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from embeddings.e5_onnx import E5OnnxSettings
from guardrails.classifier import InjectionClassifier, combine_turn, featurize, is_short, may_veto, semantic_inputs
from guardrails.semantic import Matrix, SemanticEncoder, SemanticSpec
from lab.guardrails.data import Example, text_key

__all__ = ["TURN_C", "Trained", "add_turn_model", "fit_logistic", "fold_of", "is_conversation", "semantic_vectors",
           "source_weights", "train_classifier", "train_with_oof"]


def is_conversation(example: Example) -> bool:
    return example.task.startswith("conversation")


@dataclass(frozen=True)
class Trained:
    """A trained classifier and, per training example, the score it would get from a model that never
    saw it (out-of-fold; the turns are scored by the main model fitted without them): the dev
    protocol runs the whole rail on these."""

    classifier: InjectionClassifier
    oof_scores: np.ndarray


def fit_logistic(x: object, y: np.ndarray, c: float, seed: int,
                 weights: np.ndarray | None = None) -> LogisticRegression:
    """Class-balanced logistic regression; ``weights``: per-example weights that already balance the classes."""
    if weights is not None:
        model = LogisticRegression(C=c, max_iter=3000, solver="liblinear", random_state=seed)
        return model.fit(x, y, sample_weight=weights)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, solver="liblinear", random_state=seed)
    return model.fit(x, y)


def source_weights(sources: Sequence[str], attack: np.ndarray) -> np.ndarray:
    """Each example weighted 1/sqrt(size of its source and class), each class then scaled to half the
    total: a large source (slabs, Gandalf) no longer sets the boundary alone, and a model learns what
    the sources share rather than what the largest one says."""
    keys = [f"{s}|{a}" for s, a in zip(sources, attack, strict=True)]
    counts = Counter(keys)
    w = np.array([1.0 / np.sqrt(counts[k]) for k in keys])
    for cls in (True, False):
        m = attack == cls
        if m.any():
            w[m] *= (len(w) / 2) / w[m].sum()
    return w


def fold_of(texts: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Each text's fold, from a hash of the text: adding examples leaves every other example in its fold,
    so two training sets that differ by a corpus file give paired out-of-fold numbers."""
    return np.array([zlib.crc32(f"{seed}:{text_key(t)}".encode()) % folds for t in texts])


def _out_of_fold_logits(x: object, y: np.ndarray, fold: np.ndarray, c: float, seed: int) -> np.ndarray:
    logits = np.zeros(len(y))
    for k in np.unique(fold):
        train_idx, test_idx = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        model = fit_logistic(x[train_idx], y[train_idx], c, seed)  # type: ignore[index]
        logits[test_idx] = model.decision_function(x[test_idx])  # type: ignore[index]
    return logits


def _rate(hits: np.ndarray) -> str:
    """Share of True in ``hits``, for the model's metadata ("-" when there is nothing to count)."""
    return f"{hits.mean():.4f}" if hits.size else "-"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))), dtype=np.float64)


def _turn_model(x: object, examples: Sequence[Example], labels: np.ndarray, fold: np.ndarray, c: float,
                seed: int) -> tuple[np.ndarray, LogisticRegression, np.ndarray]:
    """The turn model on the short texts: their indices, the fitted model, their out-of-fold p."""
    short = np.flatnonzero(np.array([is_short(e.text) for e in examples]))
    model = fit_logistic(x[short], labels[short], c, seed)  # type: ignore[index]
    p_turn = _sigmoid(_out_of_fold_logits(x[short], labels[short], fold[short], c, seed))  # type: ignore[index]
    return short, model, p_turn


def add_turn_model(classifier: InjectionClassifier, examples: Sequence[Example], *, c: float = 64.0,
                   seed: int = 0, folds: int = 5) -> InjectionClassifier:
    """``classifier`` with its main weights and biases kept and a turn model (re)trained on ``examples``."""
    labels = np.array([e.label == "attack" for e in examples])
    x = featurize([e.text for e in examples])
    fold = fold_of([e.text for e in examples], folds, seed)
    short, model, p_turn = _turn_model(x, examples, labels, fold, c, seed)
    turn = np.array([is_conversation(e) for e in examples])[short]
    main_p = classifier.scores([e.text for e in (examples[i] for i in short)])
    vetoable = np.array([may_veto(examples[i].text) for i in short], dtype=bool)
    combined = np.where(vetoable, combine_turn(main_p, p_turn), main_p)
    meta = dict(classifier.meta)
    meta.update({"conversation_turns": str(int(turn.sum())), "short_texts": str(len(short)),
                 "turn_model_note": f"turn model trained on {len(short)} short texts, main weights kept"})
    for lang in ("en", "ko"):
        mask = np.array([examples[i].lang == lang for i in short])
        meta[f"oof_conversation_fpr_{lang}"] = _rate(combined[mask & turn] >= 0.5)
        vetoed = (main_p >= 0.5) & (combined < 0.5) & labels[short] & mask
        meta[f"turn_model_vetoed_attacks_{lang}"] = str(int(vetoed.sum()))
    return classifier.with_turn_model(model.coef_[0], float(model.intercept_[0]), meta)


DEFAULT_SEMANTIC = SemanticSpec()
# The turn model's regularisation: it is a sure veto on short texts, so it keeps the weakly
# regularised fit it was designed with (its veto cut, TURN_MIN, was chosen on it), whatever C the
# main model uses.
TURN_C = 64.0


def semantic_vectors(texts: Sequence[str], spec: SemanticSpec) -> Matrix:
    """The semantic vectors of training texts, with a progress bar."""
    encoder = SemanticEncoder(spec, models_dir=E5OnnxSettings().models_dir)
    with tqdm(total=len(texts), desc="semantic vectors", unit="text", leave=False) as bar:
        return encoder.encode(semantic_inputs(texts), progress=lambda done: bar.update(done - bar.n))


def train_classifier(examples: Sequence[Example], *, c: float = 64.0, seed: int = 0, folds: int = 5,
                     repeats: int = 3, target_fpr: float = 0.015, target_fpr_ko: float | None = None,
                     semantic: SemanticSpec | None = DEFAULT_SEMANTIC, note: str = "") -> InjectionClassifier:
    """Fit a class-balanced logistic regression on hashed n-grams (and the semantic block unless
    ``semantic`` is None) and calibrate its 0.5 point."""
    return train_with_oof(examples, c=c, seed=seed, folds=folds, repeats=repeats, target_fpr=target_fpr,
                          target_fpr_ko=target_fpr_ko, semantic=semantic, note=note).classifier


def train_with_oof(examples: Sequence[Example], *, c: float = 64.0, seed: int = 0, folds: int = 5,
                   repeats: int = 3, target_fpr: float = 0.015, target_fpr_ko: float | None = None,
                   semantic: SemanticSpec | None = DEFAULT_SEMANTIC, vectors: Matrix | None = None,
                   note: str = "", calibrate: bool = True, ngrams: sparse.csr_matrix | None = None,
                   balance_sources: bool = False) -> Trained:
    """:func:`train_classifier`, also returning every example's out-of-fold score (of the first
    repeat). The cut is the ``target_fpr`` quantile of the benign out-of-fold logits of ``repeats``
    differently seeded fold assignments pooled: one assignment's quantile moves by a point or two of
    recall from seed to seed. ``target_fpr_ko``: Korean's own target (default: ``target_fpr``); Korean
    benign training texts are mostly hard negatives, so the same share is a stricter cut there.
    ``vectors``: the examples' semantic vectors when already computed (:func:`semantic_vectors`).
    ``calibrate=False``: no out-of-fold runs; every language keeps the fitted intercept, and the
    cut points are the policy's, chosen on the leave-source-out protocol (:mod:`lab.guardrails`);
    ``oof_scores`` are then the in-sample scores. ``ngrams``: the examples' :func:`featurize` rows when
    already computed. ``balance_sources``: weight examples by :func:`source_weights` (main model
    only; with ``calibrate=False``)."""
    labels = np.array([e.label == "attack" for e in examples])
    korean = np.array([e.lang == "ko" for e in examples])
    turn = np.array([is_conversation(e) for e in examples])
    if (labels & turn).any():
        raise ValueError("conversational turns must be labelled benign")
    x = featurize([e.text for e in examples]) if ngrams is None else ngrams
    features = x
    if semantic is not None:
        if vectors is None:
            vectors = semantic_vectors([e.text for e in examples], semantic)
        features = sparse.hstack([x, sparse.csr_matrix(vectors * semantic.scale)], format="csr")
    main = np.flatnonzero(~turn)
    weights = source_weights([examples[int(i)].source for i in main], labels[main]) if balance_sources else None
    model = fit_logistic(features[main], labels[main], c, seed, weights)
    if not calibrate:
        return _uncalibrated(model, x, features, examples, labels, semantic, seed, c, note)
    runs = np.zeros((repeats, len(examples)))
    for r in range(repeats):
        fold = fold_of([e.text for e in examples], folds, seed + r)
        runs[r, main] = _out_of_fold_logits(features[main], labels[main], fold[main], c, seed)
        if turn.any():
            runs[r, turn] = model.decision_function(features[turn])
    logits = runs[0]
    fold = fold_of([e.text for e in examples], folds, seed)
    meta = {"examples": str(len(examples)), "attacks": str(int(labels.sum())), "c": str(c),
            "target_fpr": str(target_fpr), "target_fpr_ko": str(target_fpr if target_fpr_ko is None else target_fpr_ko),
            "sources": ",".join(sorted(Counter(e.source for e in examples))),
            "conversation_turns": str(int(turn.sum())), "calibration_repeats": str(repeats), "note": note,
            "semantic": "none" if semantic is None else
            f"e5 layers {semantic.layers}, {semantic.tokens} tokens, scale {semantic.scale}"}
    biases: dict[str, float] = {}
    p_main = np.zeros(len(examples))
    for lang, mask in (("en", ~korean), ("ko", korean)):
        share = target_fpr_ko if lang == "ko" and target_fpr_ko is not None else target_fpr
        cut = float(np.quantile(runs[:, ~labels & mask & ~turn], 1.0 - share))
        biases[lang] = float(model.intercept_[0]) - cut
        p_main[mask] = _sigmoid(logits[mask] - cut)
    short, turn_model, p_turn = _turn_model(x, examples, labels, fold, c, seed)
    scores = p_main.copy()
    vetoable = np.array([may_veto(examples[i].text) for i in short], dtype=bool)
    scores[short] = np.where(vetoable, combine_turn(p_main[short], p_turn), p_main[short])
    for lang, mask in (("en", ~korean), ("ko", korean)):
        meta[f"oof_recall_at_target_{lang}"] = _rate(scores[labels & mask] >= 0.5)
        meta[f"oof_fpr_{lang}"] = _rate(scores[~labels & mask & ~turn] >= 0.5)
        meta[f"oof_conversation_fpr_{lang}"] = _rate(scores[mask & turn] >= 0.5)
    meta["short_texts"] = str(len(short))
    n_gram_weights = model.coef_[0][: x.shape[1]]
    semantic_weights = None if semantic is None else model.coef_[0][x.shape[1] :]
    classifier = InjectionClassifier(n_gram_weights, biases, turn_weights=turn_model.coef_[0],
                                     turn_bias=float(turn_model.intercept_[0]), semantic_weights=semantic_weights,
                                     semantic=semantic, meta=meta)
    return Trained(classifier, scores)


def _uncalibrated(model: LogisticRegression, x: sparse.csr_matrix, features: sparse.csr_matrix,
                  examples: Sequence[Example], labels: np.ndarray, semantic: SemanticSpec | None, seed: int,
                  c: float, note: str) -> Trained:
    """The fitted model as it is (both languages on its intercept) with a turn model fitted once."""
    short = np.flatnonzero(np.array([is_short(e.text) for e in examples]))
    turn_model = fit_logistic(x[short], labels[short], TURN_C, seed)
    meta = {"examples": str(len(examples)), "attacks": str(int(labels.sum())), "c": str(c), "note": note,
            "calibration": "none: cut points from the policy (leave-source-out protocol)",
            "sources": ",".join(sorted(Counter(e.source for e in examples))),
            "conversation_turns": str(sum(is_conversation(e) for e in examples)), "short_texts": str(len(short)),
            "semantic": "none" if semantic is None else
            f"e5 layers {semantic.layers}, {semantic.tokens} tokens, scale {semantic.scale}"}
    bias = float(model.intercept_[0])
    classifier = InjectionClassifier(model.coef_[0][: x.shape[1]], {"en": bias, "ko": bias},
                                     turn_weights=turn_model.coef_[0], turn_bias=float(turn_model.intercept_[0]),
                                     semantic_weights=None if semantic is None else model.coef_[0][x.shape[1]:],
                                     semantic=semantic, meta=meta)
    return Trained(classifier, _sigmoid(model.decision_function(features)))
