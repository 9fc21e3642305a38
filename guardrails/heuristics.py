"""The pattern rules of the injection and extraction rails, read from a data file (``rules.yaml``).

Each rule has an id, a category (injection, extraction, harmful), a language, a regex and example
texts; :func:`load_rules` validates and compiles the file once, and :meth:`RuleSet.without` drops
the rules a policy switches off. A hit names its rule, so a decision can be traced to it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guardrails.yamlfile import read_yaml

__all__ = ["Category", "Rule", "RuleHit", "RuleSet", "RulesError", "load_rules", "parse_rules"]

Category = Literal["injection", "extraction", "harmful", "instruction"]
_FLAGS = {"IGNORECASE": re.IGNORECASE}
_REFERENCE = re.compile(r"\$\{(\w+)\}")
_HIT_CHARS = 80


class RulesError(ValueError):
    """The rules file is missing, not YAML, invalid, or names what does not exist."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _PatternSpec(_Strict):
    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    flags: tuple[Literal["IGNORECASE"], ...] = ()
    pattern: tuple[str, ...] = Field(min_length=1, description="Pieces joined without separators.")
    examples: tuple[str, ...] = Field(min_length=1, description="Texts the pattern must match.")
    near_misses: tuple[str, ...] = Field((), description="Texts the pattern must not match.")

    @field_validator("pattern", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return (v,) if isinstance(v, str) else v


class _RuleSpec(_PatternSpec):
    category: Category
    language: Literal["en", "ko", "eu"]


class _RulesFile(_Strict):
    fragments: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    rules: tuple[_RuleSpec, ...]
    exemptions: tuple[_PatternSpec, ...]


@dataclass(frozen=True)
class Rule:
    """One compiled rule; ``category`` is ``exemption`` for the framings under which rules are skipped."""

    id: str
    category: Category | Literal["exemption"]
    language: str
    pattern: re.Pattern[str]
    examples: tuple[str, ...] = ()
    near_misses: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleHit:
    """A rule that matched a text: its id and the matched snippet (at most 80 characters)."""

    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.text}"


@dataclass(frozen=True)
class RuleSet:
    """The compiled rules in file order, and the two exemptions: ``about_attacks`` (the text talks
    about attacks: every rule is skipped) and ``defensive`` (the text asks how to prevent or recognise
    a harm: harmful rules are skipped)."""

    rules: tuple[Rule, ...]
    about_attacks: Rule
    defensive: Rule
    _by_category: dict[str, tuple[Rule, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_category = {c: tuple(r for r in self.rules if r.category == c)
                       for c in ("injection", "extraction", "harmful", "instruction")}
        object.__setattr__(self, "_by_category", by_category)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    def without(self, disabled: Collection[str]) -> RuleSet:
        """The rules less those named in ``disabled``; an id that names no rule raises :class:`RulesError`."""
        unknown = sorted(set(disabled) - set(self.ids))
        if unknown:
            raise RulesError(f"disabled_rules names rules that do not exist: {', '.join(unknown)}")
        return RuleSet(tuple(r for r in self.rules if r.id not in disabled), self.about_attacks, self.defensive)

    def discusses_attacks(self, text: str) -> bool:
        """The text asks about attacks (why they are dangerous, how to detect them) rather than making one."""
        return self.about_attacks.pattern.search(text) is not None

    def first_hit(self, category: Category, text: str) -> RuleHit | None:
        """The first rule of ``category`` (in file order) that matches ``text``, or None."""
        for rule in self._by_category[category]:
            m = rule.pattern.search(text)
            if m:
                return RuleHit(rule.id, m.group(0)[:_HIT_CHARS])
        return None

    def harmful_hit(self, text: str) -> RuleHit | None:
        """A request for harm, unless the text is framed defensively."""
        hit = self.first_hit("harmful", text)
        return None if hit is None or self.defensive.pattern.search(text) else hit


def _compile(spec: _PatternSpec, fragments: dict[str, str], category: Category | Literal["exemption"],
             language: str) -> Rule:
    def fragment(m: re.Match[str]) -> str:
        if m.group(1) not in fragments:
            raise RulesError(f"rule {spec.id}: unknown fragment ${{{m.group(1)}}}")
        return fragments[m.group(1)]

    source = _REFERENCE.sub(fragment, "".join(spec.pattern))
    flags = 0
    for name in spec.flags:
        flags |= _FLAGS[name]
    try:
        pattern = re.compile(source, flags)
    except re.error as exc:
        raise RulesError(f"rule {spec.id}: not a valid regex: {exc}") from None
    return Rule(spec.id, category, language, pattern, spec.examples, spec.near_misses)


def _exemption(specs: tuple[_PatternSpec, ...], fragments: dict[str, str], name: str) -> Rule:
    found = [s for s in specs if s.id == name]
    if len(found) != 1:
        raise RulesError(f"exemptions must hold exactly one entry with id {name}")
    return _compile(found[0], fragments, "exemption", "")


def parse_rules(data: object, *, source: str = "<rules>") -> RuleSet:
    """Validate and compile already-parsed YAML; raise :class:`RulesError` naming every problem."""
    try:
        spec = _RulesFile.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise RulesError(f"guardrails rules {source} are invalid:\n{problems}") from None
    ids = [r.id for r in (*spec.rules, *spec.exemptions)]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RulesError(f"guardrails rules {source}: duplicate ids: {', '.join(duplicates)}")
    fragments = {name: "".join(pieces) for name, pieces in spec.fragments.items()}
    rules = tuple(_compile(r, fragments, r.category, r.language) for r in spec.rules)
    return RuleSet(rules, _exemption(spec.exemptions, fragments, "about-attacks"),
                   _exemption(spec.exemptions, fragments, "defensive"))


def load_rules(path: Path) -> RuleSet:
    """Read, validate and compile the rules file at ``path``."""
    return parse_rules(read_yaml(path, RulesError, "guardrails rules"), source=str(path))
