"""Reading the guardrails' YAML files (policy, rules): one place for the two ways reading can fail."""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["read_yaml"]


def read_yaml(path: Path, error: type[Exception], what: str) -> object:
    """The parsed YAML at ``path``; an unreadable file or bad YAML raises ``error`` naming ``what`` and the path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{what} {path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} {path}: not valid YAML: {exc}") from None
