from __future__ import annotations

from collections.abc import Iterator

import pytest

from guardrails.engine import LocalGuard
from guardrails.settings import GuardrailsSettings


@pytest.fixture(scope="session")
def local_guard() -> Iterator[LocalGuard]:
    """The real guard with the packaged policy, classifier and MiniLM topic embedder (loaded once)."""
    guard = LocalGuard.from_settings(GuardrailsSettings())
    guard.load()
    yield guard
