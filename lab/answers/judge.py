"""Faithfulness judged by an LLM (any OpenAI-compatible server), and how well a judge agrees with the
hand-labelled sample kept beside this module (``faithfulness_labels.jsonl``: English and Korean answer
sentences with the sources they cite, each labelled supported or not by a person)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from lab.answers.scoring import supported

__all__ = ["LABELS", "LlmJudge", "agreement", "lexical_judge", "load_labels"]

LABELS = Path(__file__).with_name("faithfulness_labels.jsonl")

_SYSTEM = ("You check answers against their sources. Reply with exactly one word: yes if every fact in the "
           "claim is stated in or directly follows from the sources, no otherwise.")


class LlmJudge:
    """Asks the model whether the sources support a sentence (temperature 0, one word back)."""

    def __init__(self, url: str, *, model: str, api_key: str = "none", timeout_s: float = 60.0) -> None:
        import openai

        self.model = model
        self._client = openai.OpenAI(base_url=url, api_key=api_key, timeout=timeout_s, max_retries=1)

    @lru_cache(maxsize=4096)  # noqa: B019 - one judge per run; the same sentence and sources give one verdict
    def _verdict(self, sentence: str, sources: tuple[str, ...]) -> bool:
        numbered = "\n\n".join(f"[{i}] {s[:1500]}" for i, s in enumerate(sources, 1)) or "(none)"
        response = self._client.chat.completions.create(
            model=self.model, temperature=0.0, max_tokens=3,
            messages=[{"role": "system", "content": _SYSTEM},
                      {"role": "user", "content": f"Sources:\n{numbered}\n\nClaim: {sentence}\n\nSupported?"}])
        text = (response.choices[0].message.content or "").strip().lower()
        return text.startswith(("yes", "예", "네"))

    def __call__(self, sentence: str, sources: Sequence[str]) -> bool:
        return self._verdict(sentence, tuple(sources))


def load_labels(path: Path = LABELS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def agreement(judge: Callable[[str, Sequence[str]], bool], labels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy and Cohen's kappa of ``judge`` against the hand labels, overall and per language."""
    def stats(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        pairs = [(bool(judge(r["sentence"], r["sources"])), bool(r["supported"])) for r in rows]
        n = len(pairs)
        if not n:
            return {"n": 0}
        observed = sum(a == b for a, b in pairs) / n
        p_yes = (sum(a for a, _ in pairs) / n) * (sum(b for _, b in pairs) / n)
        p_no = (sum(not a for a, _ in pairs) / n) * (sum(not b for _, b in pairs) / n)
        expected = p_yes + p_no
        kappa = (observed - expected) / (1 - expected) if expected < 1 else 1.0
        return {"n": n, "accuracy": round(observed, 4), "kappa": round(kappa, 4)}

    out = stats(labels)
    for language in sorted({r["lang"] for r in labels}):
        out[language] = stats([r for r in labels if r["lang"] == language])
    return out


def lexical_judge(sentence: str, sources: Sequence[str]) -> bool:
    return supported(sentence, sources)
