"""The evidence check over real HTTP: a gateway process with a private Redis, answers from the packaged
CPU generator (stop sequences keep them short and complete, so they are cached). The threshold and the
guards are loosened for this server so that a near miss reaches the evidence check: a paraphrase whose
retrieval agrees is served, a question whose retrieval finds another document is answered fresh."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_cache_and_tenants import STOP, RedisProcess

pytestmark = pytest.mark.e2e

KEY = "sk-evidence-0123456789abcdef"
DOCS = [
    {"id": "harbor", "title": "Harbor rules",
     "text": "The Zentra harbor opens at six in the morning. Ships longer than 80 metres need a pilot."},
    {"id": "ferry", "title": "Ferry",
     "text": "The Zentra ferry to Mirel island leaves every two hours from pier four and costs 12 euros."},
]


@pytest.fixture(scope="module")
def loose(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    redis = RedisProcess(tmp_path_factory.mktemp("redis-evidence"))
    redis.start()
    srv = start_server(tmp_path_factory.mktemp("ragd-evidence"), {
        "RAGD_GATEWAY_API_KEYS": f"{KEY}:acme:user", "RAGD_REDIS_URL": redis.url, "RAGD_GATEWAY_DEMO_CORPUS": "",
        "RAGD_CACHE_GUARDS": "false", "RAGD_CACHE_SEMANTIC_THRESHOLD": "0.8"})
    headers = {"authorization": f"Bearer {KEY}"}
    assert httpx.post(srv.openai_base + "/collections", json={"name": "docs"}, headers=headers,
                      timeout=60).status_code == 201
    response = httpx.post(srv.openai_base + "/collections/docs/documents", json={"documents": DOCS},
                          headers=headers, timeout=300)
    assert response.status_code == 200, response.text
    yield srv
    stop_server(srv.process)
    redis.kill()


def _ask(server: Server, question: str) -> httpx.Response:
    response = httpx.post(server.openai_base + "/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                          timeout=180, json={"model": "ragd:docs", "messages": [{"role": "user", "content": question}],
                                             "max_tokens": 48, "stop": STOP, "ragd": {"top_k": 1}})
    assert response.status_code == 200, response.text
    return response


def _rejected(server: Server, reason: str) -> float:
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               if family.name == "ragd_cache_semantic_rejected" for sample in family.samples
               if sample.name == "ragd_cache_semantic_rejected_total" and sample.labels["reason"] == reason)


def test_paraphrase_served_near_miss_with_other_evidence_answered_fresh(loose: Server) -> None:
    first = _ask(loose, "When does the Zentra harbor open?")
    assert first.headers["x-ragd-cache"] == "miss"
    assert first.json()["choices"][0]["finish_reason"] == "stop"  # complete, hence cached
    assert [c["document_id"] for c in first.json()["citations"]] == ["harbor"]

    paraphrase = _ask(loose, "What time does the Zentra harbor open?")
    assert paraphrase.headers["x-ragd-cache"] == "semantic"
    assert paraphrase.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
    again = _ask(loose, "What time does the Zentra harbor open?")  # the same question twice: exact the second time
    assert again.headers["x-ragd-cache"] == "exact"
    assert again.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]

    before = _rejected(loose, "evidence")
    near_miss = _ask(loose, "When does the Zentra ferry leave?")
    assert near_miss.headers["x-ragd-cache"] == "miss"
    assert [c["document_id"] for c in near_miss.json()["citations"]] == ["ferry"]
    assert _rejected(loose, "evidence") == before + 1
