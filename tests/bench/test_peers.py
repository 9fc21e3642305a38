"""``ragd bench peers`` (lab/peers): the pieces that decide what is compared and how it is reported, on
small inputs; the comparisons themselves run in ``make bench-peers`` (each peer in its own virtualenv)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import yaml
from fastapi.testclient import TestClient

from lab.cache.evaluation import Pair
from lab.peers.answer_cache import litellm_config
from lab.peers.bench import KEYS, RETRIEVAL_KEYS, markdown_table, redis_vector_search
from lab.peers.retrieval import embed_app, subset
from lab.peers.semantic import rates
from lab.retriever.evaluation import Dataset
from services.contracts import DocumentIn


def _doc(i: int) -> DocumentIn:
    return DocumentIn(id=f"d{i}", title=f"T{i}", text=f"text {i}")


def test_subset_keeps_the_gold_documents_then_fills_in_corpus_order() -> None:
    dataset = Dataset("x", [_doc(i) for i in range(10)], {"q1": "one", "q2": "two", "q3": "three"},
                      {"q1": {"d8": 1}, "q2": {"d9": 1, "d0": 0}, "q3": {"d1": 1}})
    small = subset(dataset, queries=2, docs=4)
    assert list(small.queries) == ["q1", "q2"]
    assert [d.id for d in small.docs] == ["d0", "d1", "d8", "d9"]  # gold d8, d9; then d0, d1; corpus order
    assert subset(dataset, queries=3, docs=1).docs == [dataset.docs[1], dataset.docs[8], dataset.docs[9]]


def test_rates_count_paraphrase_hits_and_false_hits_separately() -> None:
    pairs = [Pair(id=f"p{i}", lang="en", kind="paraphrase", hit=True, split="dev", a="a", b="b") for i in range(4)]
    pairs += [Pair(id=f"n{i}", lang="en", kind="negation", hit=False, split="dev", a="a", b="c") for i in range(5)]
    assert rates(pairs, {"p0", "p1", "p2", "n4"}) == {"paraphrase_hit_rate": 0.75, "false_hit_rate": 0.2}


def test_litellm_config_caches_in_the_given_redis_database() -> None:
    config = litellm_config("http://127.0.0.1:9/v1", "redis://127.0.0.1:6380/7", "ns")
    params = config["litellm_settings"]["cache_params"]
    assert (params["type"], params["host"], params["port"], params["db"], params["namespace"]) == \
        ("redis", "127.0.0.1", 6380, 7, "ns")
    assert config["model_list"][0]["litellm_params"]["api_base"] == "http://127.0.0.1:9/v1"
    yaml.safe_dump(config)  # what the proxy reads


def test_the_table_says_why_a_skipped_peer_has_no_number() -> None:
    result = {"cache": dict.fromkeys(KEYS["cache"]), "semantic_cache": {
        "ragd_false_hit_rate": 0.01, "peer_false_hit_rate": 0.9, "ragd_paraphrase_hit_rate": 0.5,
        "peer_paraphrase_hit_rate": 1.0}, "retrieval": {"scifact": dict.fromkeys(RETRIEVAL_KEYS)},
        "skipped": {"litellm": "pip install -r litellm.txt failed: no matching distribution"}}
    table = markdown_table(result)
    assert "| answer cache, exact hits | req/s | n/a | n/a |" in table
    assert "| semantic cache | false-hit rate | 0.010 | 0.900 |" in table
    assert "- skipped, litellm: pip install -r litellm.txt failed: no matching distribution" in table


def test_redis_vector_search_is_answered_in_one_line_by_the_real_redis() -> None:
    reason = redis_vector_search("redis://127.0.0.1:6379/15")
    assert reason is None or ("vector search" in reason and "\n" not in reason)


class FakeEmbedder:
    """Two fixed vectors, one per kind (only the HTTP shape is under test here)."""

    dim = 2

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.tile(np.asarray([1.0, 0.0], dtype=np.float32), (len(texts), 1))

    def embed_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.tile(np.asarray([0.0, 1.0], dtype=np.float32), (len(texts), 1))


def test_embed_app_serves_query_and_passage_vectors_with_a_fake_embedder() -> None:
    client = TestClient(embed_app(FakeEmbedder()))  # type: ignore[arg-type]
    assert client.post("/embed", json={"texts": ["q"], "kind": "query"}).json() == {"vectors": [[1.0, 0.0]]}
    assert client.post("/embed", json={"texts": ["a", "b"], "kind": "passage"}).json()["vectors"] == \
        [[0.0, 1.0], [0.0, 1.0]]
