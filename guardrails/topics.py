"""Off-limits topics: user intents with example utterances (``topics.yaml``), matched by embeddings.

The intent examples are embedded once with the packaged all-MiniLM-L6-v2 and a question is matched
to its nearest example (an embeddings-only dialog rail, without a dialog engine or an LLM call).
A question fires when its nearest example belongs to an off-limits intent with cosine >= the
policy threshold. The embedder only runs when a cheap
bilingual gate sees a political word *and* a request for a stance (opinion, support, better/worse),
which keeps ordinary and factual questions at sub-millisecond cost.

MiniLM has no Korean vocabulary (it sees jamo pieces), so Korean questions are matched against the
Korean examples by character n-gram cosine instead; the nearest intent decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from sklearn.feature_extraction.text import HashingVectorizer

from embeddings.minilm_onnx import MiniLMOnnxEmbedder

_CHARS = HashingVectorizer(analyzer="char_wb", ngram_range=(1, 3), n_features=2**16, alternate_sign=False,
                           norm="l2")


def _is_korean(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum("\uac00" <= c <= "\ud7a3" for c in letters) / len(letters) >= 0.3


__all__ = ["Embed", "TopicMatch", "TopicMatcher", "load_intents", "minilm_embedder"]

Embed = Callable[[Sequence[str]], np.ndarray]
_MAX_CHARS = 300  # stance questions are short; a long prompt is matched on its opening only

_GATE = re.compile(
    r"\b(?:vot\w*|elect\w*|ballot|polit\w*|party|parties|president\w*|presidency|government|senat\w*|"
    r"congress\w*|parliament\w*|democrat\w*|republican\w*|liberal\w*|conservative\w*|left[- ]wing|"
    r"right[- ]wing|leftist|socialis\w*|capitalis\w*|communis\w*|abortion|gun control|immigration|"
    r"impeach\w*|candidate\w*|minister|administration|trump|biden|harris|obama|stance|regime)\b"
    r"|정치|선거|대선|총선|투표|찍어|정당|대통령|국회|의원|여당|야당|진보|보수|민주당|국민의힘|정부|장관|탄핵|"
    r"좌파|우파|후보|낙태|이민|정권|지지|윤석열|이재명|문재인|박근혜|이명박",
    re.IGNORECASE,
)
_STANCE = re.compile(
    r"\b(?:should (?:i|we) (?:vote|support|back|choose)|vote for|your (?:own )?(?:opinion|view|stance|position|"
    r"take|preference)|do you (?:think|believe|support|prefer|agree|like|favou?r)|what do you think|"
    r"(?:better|worse|right|wrong|good|bad|best|worst|deserve\w*)\b|who (?:should|would you|do you)|"
    r"which (?:party|candidate|side|one)|support|agree|for or against|in favou?r|side with|endorse|"
    r"your (?:political )?(?:views?|leaning)|are you (?:a |an )?(?:liberal|conservative|democrat|republican|"
    r"left|right))"
    r"|어떻게\s*(?:생각|봐|보니|보세요|평가)|생각해\??|생각하(?:니|세요|십니까|나요)|봐\?|보니\?|의견은|네\s*의견|너의\s*의견|"
    r"당신의\s*(?:의견|생각|입장)|입장은|지지해|지지하(?:니|세요|나요)|찬성(?:해|하니|하세요|이야)|반대(?:해|하니|하세요|야)|"
    r"옳아|옳다고|옳은\s*(?:거|것)|맞아\?|맞다고\s*(?:봐|생각)|나아\?|낫다고|나은\s*(?:당|후보|정당)|좋아\?|나빠\?|"
    r"찍어야|찍을까|찍지|뽑아야|뽑을까|투표해야|편이야|편이니|어느\s*쪽이|누구\s*편|성향은|잘하고\s*있|못하고\s*있|"
    r"성공했다고|실패했다고|잘못했다고|잘했다고|(?:진보|보수|좌파|우파)(?:야|니|예요|인가요)\?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TopicMatch:
    topic: str | None  # the off-limits topic that fired, or None
    score: float       # best cosine to an off-limits example
    nearest: str       # the nearest intent (for the decision detail)


def topic_key(intent: str) -> str:
    """Colang intent name -> policy topic name: ``ask political_stance`` -> ``political_stance``."""
    name = intent.removeprefix("ask ").strip()
    return re.sub(r"\s+", "_", name)


def load_intents(path: Path) -> dict[str, list[str]]:
    """The user intents (name -> example utterances) of a topics YAML file."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    intents = document.get("intents") if isinstance(document, dict) else None
    if not isinstance(intents, dict) or not all(
            isinstance(examples, list) and all(isinstance(e, str) for e in examples) for examples in intents.values()):
        raise ValueError(f"{path}: expected 'intents: {{name: [example, ...]}}'")
    return {topic_key(str(name)): list(examples) for name, examples in intents.items()}


def minilm_embedder(models_dir: Path, path: Path | None = None) -> Embed:
    """Normalised embeddings for the topic rail under ONNX Runtime (``embeddings.minilm_onnx``: the same
    vectors as sentence-transformers, no torch): the packaged all-MiniLM-L6-v2, or ``path``, a
    sentence-transformers directory of the same architecture (BERT, mean pooling, ``model.safetensors``).
    ``models_dir``: where the built graph is cached."""
    if path is None:
        return MiniLMOnnxEmbedder.shared(models_dir, threads=1).embed_queries
    return MiniLMOnnxEmbedder(models_dir, threads=1, model_dir=path).embed_queries


class TopicMatcher:
    """Nearest-example matcher over Colang intents; ``off_limits`` names the topics that block."""

    def __init__(self, intents: dict[str, list[str]], off_limits: Sequence[str], embed: Embed) -> None:
        missing = set(off_limits) - set(intents)
        if missing:
            raise ValueError(f"policy topics {sorted(missing)} are not defined in the topic intents "
                             f"(defined: {sorted(intents)})")
        self._embed = embed
        self._off_limits = frozenset(off_limits)
        self._labels = [name for name, examples in intents.items() for _ in examples]
        texts = [text for examples in intents.values() for text in examples]
        self._matrix = embed(texts)
        korean = [i for i, t in enumerate(texts) if _is_korean(t)]
        self._ko_labels = [self._labels[i] for i in korean]
        self._ko_matrix = _CHARS.transform([texts[i] for i in korean])

    def _match_korean(self, text: str) -> TopicMatch:
        if not self._ko_labels:
            return TopicMatch(None, 0.0, "")
        sims = (self._ko_matrix @ _CHARS.transform([text]).T).toarray().ravel()
        nearest = self._ko_labels[int(np.argmax(sims))]
        score = max((float(s) for s, label in zip(sims, self._ko_labels, strict=True)
                     if label in self._off_limits), default=0.0)
        return TopicMatch(nearest if nearest in self._off_limits else None, score, nearest)

    @staticmethod
    def gate(text: str) -> bool:
        return bool(_GATE.search(text)) and bool(_STANCE.search(text))

    def match(self, text: str, threshold: float) -> TopicMatch:
        if not self.gate(text):
            return TopicMatch(None, 0.0, "")
        text = text[:_MAX_CHARS]
        if _is_korean(text):
            return self._match_korean(text)
        sims = self._matrix @ self._embed([text])[0]
        nearest = self._labels[int(np.argmax(sims))]
        off = [float(s) for s, label in zip(sims, self._labels, strict=True) if label in self._off_limits]
        score = max(off, default=0.0)
        fired = nearest in self._off_limits and score >= threshold
        return TopicMatch(nearest if fired else None, score, nearest)
