"""The borderline band: with the verifier on, a neighbour inside the band hits only if the verifier agrees.

No cross-encoder ships on PyPI here, so the verifier is a fake that returns a fixed score."""

from __future__ import annotations

import pytest

from cache import AnswerCache, CachedAnswer, CacheSettings
from embeddings.protocol import Embedder
from tests.cache.conftest import scope

pytestmark = pytest.mark.anyio

STORED = "How do I delete my account permanently?"
PARAPHRASE = "How can I permanently delete my account?"
ANSWER = CachedAnswer(content="Settings > Account > Delete.")


class FakeFixedVerifier:
    def __init__(self, score: float) -> None:
        self.score_value = score
        self.calls: list[tuple[str, str]] = []

    def score(self, question: str, candidate: str) -> float:
        self.calls.append((question, candidate))
        return self.score_value


@pytest.mark.parametrize(("score", "outcome"), [(0.9, "semantic"), (0.1, "miss")])
async def test_verifier_decides_inside_the_band(embedder: Embedder, score: float, outcome: str) -> None:
    settings = CacheSettings(verifier=True, verifier_band=0.2, verifier_min_score=0.5, semantic_threshold=0.8)
    verifier = FakeFixedVerifier(score)
    cache = AnswerCache.create(settings, None, embedder, verifier)
    await cache.store(scope(), STORED, ANSWER)
    assert (await cache.lookup(scope(), PARAPHRASE)).outcome == outcome
    assert verifier.calls == [(PARAPHRASE, STORED)]
    assert (await cache.lookup(scope(), STORED)).outcome == "exact"  # exact hits never ask the verifier
    assert len(verifier.calls) == 1
    await cache.close()


async def test_verifier_is_not_asked_above_the_band(embedder: Embedder) -> None:
    settings = CacheSettings(verifier=True, verifier_band=0.0)
    verifier = FakeFixedVerifier(0.0)
    cache = AnswerCache.create(settings, None, embedder, verifier)
    await cache.store(scope(), STORED, ANSWER)
    assert (await cache.lookup(scope(), PARAPHRASE)).outcome == "semantic"
    assert verifier.calls == []
    await cache.close()
