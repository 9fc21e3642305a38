"""Labelled data for training and evaluating the input rails, split by source.

Every source is cut 70/30 (the 30 % is never trained on); the sources also fall in two groups, so
a model trained on group A alone measures how the recipe does on sources it never saw. Licensed
files are read from the shared data directory at run time and never copied
into the repository; ragd's own examples live in ``lab/guardrails/corpus/``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["EVALUATION_ONLY", "GROUP_A", "GROUP_B", "Example", "default_data_dir", "load_split", "read_jsonl",
           "text_key", "trainable"]

Split = Literal["train", "heldout"]
Group = Literal["all", "a", "b"]
_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # "attack" | "benign"
    lang: str
    source: str
    task: str = ""


def default_data_dir() -> Path:
    """The shared evaluation data (``../shared/data`` next to the checkout)."""
    for base in (Path.cwd(), _PACKAGE.parents[1]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path("/work/shared/data")


# source name -> file under data/guardrails/. Two groups, for the unseen-source measurement.
GROUP_A: dict[str, str] = {
    "slabs": "slabs_prompt_injection/test.jsonl",
    "lakera_gandalf": "lakera_gandalf_ignore_instructions/attacks.jsonl",
    "yanismiraoui": "yanismiraoui_prompt_injections/attacks.jsonl",
    "giskard": "giskard_prompt_injections/attacks.jsonl",
    "garak": "garak_probes/attacks.jsonl",
    "deepset": "deepset_prompt_injections/train.jsonl",
    "alpaca_seed": "benign_instructions/alpaca_seed_tasks.jsonl",
    "self_instruct_en": "benign_instructions/self_instruct_user_oriented.jsonl",
    "self_instruct_ko_deepl": "benign_instructions/self_instruct_user_oriented_deepl_ko.jsonl",
    "self_instruct_ko_gpt4": "benign_instructions/self_instruct_user_oriented_gpt4_ko.jsonl",
}
GROUP_B: dict[str, str] = {
    "neuralchemy": "neuralchemy_prompt_injection/core_test.jsonl",
    "jailbreakbench": "jailbreakbench_behaviors/behaviors.jsonl",
    "notinject": "notinject/benign.jsonl",
    "korean_pi_samples": "korean_prompt_injection_samples/samples.jsonl",
    "red_teaming_en_ko": "llm_red_teaming_dataset/attacks_en_ko.jsonl",
    "square": "square_sensitive_questions/test.jsonl",
}
# QA questions (benign), split by paragraph.
_QUESTIONS: dict[str, tuple[str, str, int]] = {
    "korquad_questions": ("korquad_v1_dev", "ko", 700),
    "xquad_questions": ("xquad_en", "en", 500),
}
GROUP_A_QUESTIONS = frozenset({"xquad_questions"})
# Sources (or a source's rows in one language) whose licence allows measuring only: never in the
# training split. A shipped model learns from Apache-2.0 / MIT sets and ragd's own corpus alone.
EVALUATION_ONLY: frozenset[tuple[str, str | None]] = frozenset({
    ("korean_pi_samples", None), ("self_instruct_ko_deepl", None), ("self_instruct_ko_gpt4", None),
    ("korquad_questions", None), ("xquad_questions", None), ("red_teaming_en_ko", "ko"),
})


def trainable(example: Example) -> bool:
    """Whether a shipped model may learn from this example (see :data:`EVALUATION_ONLY`)."""
    return (example.source, None) not in EVALUATION_ONLY and (example.source, example.lang) not in EVALUATION_ONLY


def read_jsonl(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _lang(raw: object, text: str) -> str:
    if any("\uac00" <= c <= "\ud7a3" for c in text):
        return "ko"
    return raw if isinstance(raw, str) else "en"


def _bucket(key: str) -> Split:
    """70 % train, 30 % held out, stable across runs and machines."""
    return "train" if zlib.crc32(key.encode("utf-8")) % 10 < 7 else "heldout"


def _group_key(source: str, row: dict[str, object], position: int) -> str:
    """Translations of one item share a key, so an item and its translation land in the same split."""
    if source == "red_teaming_en_ko":  # EN rows then KO rows in the same order
        return f"{source}:{position}"
    raw_id = str(row.get("id", ""))
    if raw_id:
        return raw_id.removesuffix("-en")
    return str(row["text"])


def _from_file(path: Path, source: str, split: Split) -> Iterator[Example]:
    seen: dict[str, int] = {}
    for row in read_jsonl(path):
        text, label = str(row["text"]), str(row["label"])
        lang = _lang(row.get("lang"), text)
        position = seen.get(lang, 0)
        seen[lang] = position + 1
        if _bucket(_group_key(source, row, position)) != split:
            continue
        if source == "square" and label != "benign":
            continue  # sensitive-topic questions belong to the topic rail, not to injection
        if label in ("attack", "benign"):
            yield Example(text, label, lang, source, str(row.get("task", "")))


def _questions(data_dir: Path, name: str, split: Split) -> Iterator[Example]:
    folder, lang, limit = _QUESTIONS[name]
    root = data_dir / folder
    paragraph: dict[str, str] = {}
    with (root / "qrels" / "test.tsv").open(encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[0] != "query-id":
                paragraph[parts[0]] = parts[1]
    count = 0
    for row in read_jsonl(root / "queries.jsonl"):
        qid = str(row["_id"])
        if _bucket(paragraph.get(qid, qid)) != split or count >= limit:
            continue
        count += 1
        yield Example(str(row["text"]), "benign", lang, name, "question")


def _own(split: Split) -> Iterator[Example]:
    """ragd's own examples (written for this project): always training data."""
    if split != "train":
        return
    for path in sorted((_PACKAGE / "corpus").glob("*.jsonl")):
        for row in read_jsonl(path):
            text = str(row["text"])
            yield Example(text, str(row["label"]), _lang(row.get("lang"), text), f"ragd:{path.stem}",
                          str(row.get("task", "")))


def load_split(split: Split, data_dir: Path | None = None, *, group: Group = "all") -> list[Example]:
    """One split of the labelled data.

    Every source is cut 70/30 by a stable hash of the item (translations kept together); the 30 %
    is never trained on, nor is a training text equal to a held-out one, nor an evaluation-only
    source. ``group`` narrows to the sources of group A (``"a"``) or B (``"b"``), for the older
    unseen-source measurement (train on A's 70 %, evaluate on B's 30 %); the leave-source-out
    protocol (:mod:`lab.guardrails.protocol`) replaces it.
    """
    root = data_dir or default_data_dir()
    out = _collect(split, root, group)
    if split == "train":
        out = [e for e in out if trainable(e)]
        # a text that a source holds twice (under two ids) may fall on both sides: never train on it
        held_out = {text_key(e.text) for e in _collect("heldout", root, "all")}
        out = [e for e in out if text_key(e.text) not in held_out]
    return out


def text_key(text: str) -> str:
    """What counts as the same text across splits: case and whitespace ignored."""
    return " ".join(text.lower().split())


def _collect(split: Split, root: Path, group: Group) -> list[Example]:
    sources = {**GROUP_A, **GROUP_B} if group == "all" else (GROUP_A if group == "a" else GROUP_B)
    out: list[Example] = []
    for name, rel in sources.items():
        out.extend(_from_file(root / "guardrails" / rel, name, split))
    for name in _QUESTIONS:
        if group == "all" or (name in GROUP_A_QUESTIONS) == (group == "a"):
            out.extend(_questions(root, name, split))
    if group in ("all", "a"):
        out.extend(_own(split))
    return out
