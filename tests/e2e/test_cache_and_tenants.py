"""The answer cache and tenant isolation through the HTTP API of a real server with API keys,
a private Redis (killed and restarted mid-run) and two tenants with overlapping collection names."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.conftest import RedisProcess, Server, start_server, stop_server

pytestmark = pytest.mark.e2e

KEY_A, KEY_B, KEY_ADMIN = "sk-tenant-a-0123456789abcdef", "sk-tenant-b-0123456789abcdef", "sk-admin-0123456789abcdef"

DOCS_A = [
    {"id": "harbor", "title": "Harbor rules",
     "text": "The Zentra harbor opens at six in the morning. Ships longer than 80 metres need a pilot."},
    {"id": "ferry", "title": "Ferry",
     "text": "The Zentra ferry to Mirel island leaves every two hours and costs 12 euros."},
]
DOCS_B = [
    {"id": "harbor", "title": "Harbor rules (tenant B)",
     "text": "The Zentra harbor of tenant B opens at noon and is closed on Sundays."},
]


@pytest.fixture(scope="module")
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    redis = RedisProcess(tmp_path_factory.mktemp("redis"))
    redis.start()
    yield redis
    redis.kill()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, redis_proc: RedisProcess) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ragd-keyed")
    keys = f"{KEY_A}:tenant-a:user,{KEY_B}:tenant-b:user,{KEY_ADMIN}:ops:admin"
    srv = start_server(tmp, {"RAGD_GATEWAY_API_KEYS": keys, "RAGD_REDIS_URL": redis_proc.url,
                             "RAGD_GATEWAY_DEMO_CORPUS": ""})
    for key, docs in ((KEY_A, DOCS_A), (KEY_B, DOCS_B)):
        headers = {"authorization": f"Bearer {key}"}
        assert httpx.post(srv.openai_base + "/collections", json={"name": "docs"}, headers=headers,
                          timeout=60).status_code == 201
        response = httpx.post(srv.openai_base + "/collections/docs/documents", json={"documents": docs},
                              headers=headers, timeout=300)
        assert response.status_code == 200, response.text
    yield srv
    stop_server(srv.process)


# Only complete answers are cached (finish_reason "stop", never "length"): stop sequences keep the
# small CPU model's answers short and complete.
STOP = ["\n", ". "]
def ask(server: Server, key: str, messages: list[dict[str, str]], *, cache_control: str | None = None,
        model: str = "ragd:docs") -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    if cache_control:
        headers["cache-control"] = cache_control
    response = httpx.post(server.openai_base + "/chat/completions", headers=headers, timeout=180,
                          json={"model": model, "messages": messages, "max_tokens": 48, "stop": STOP})
    assert response.status_code == 200, response.text
    return response


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_auth_is_required_and_checked(keyed: Server) -> None:
    assert httpx.get(keyed.openai_base + "/models", timeout=10).status_code == 401
    bad = httpx.get(keyed.openai_base + "/models", headers={"authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"
    forbidden = httpx.post(keyed.openai_base + "/admin/keys", json={"tenant": "x"},
                           headers={"authorization": f"Bearer {KEY_A}"}, timeout=10)
    assert forbidden.status_code == 403
    embed = {"model": "ragd-embed", "input": "harbor"}
    assert httpx.post(keyed.openai_base + "/embeddings", json=embed, timeout=10).status_code == 401
    allowed = httpx.post(keyed.openai_base + "/embeddings", json=embed,
                         headers={"authorization": f"Bearer {KEY_A}"}, timeout=60)
    assert allowed.status_code == 200 and len(allowed.json()["data"][0]["embedding"]) == 384


def test_identical_question_is_never_served_across_tenants(keyed: Server) -> None:
    question = user("When does the Zentra harbor open?")
    first_a = ask(keyed, KEY_A, question)
    assert ask(keyed, KEY_A, question).headers["x-ragd-cache"] == "exact"
    answer_b = ask(keyed, KEY_B, question)
    assert answer_b.headers["x-ragd-cache"] == "miss"
    cited_b = {c["title"] for c in answer_b.json()["citations"]}
    assert cited_b and all("tenant B" in title for title in cited_b)
    assert not ({c["chunk_id"] for c in first_a.json()["citations"]}
                & {c["chunk_id"] for c in answer_b.json()["citations"]})


def _requests_total(server: Server) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(text) if family.name == "ragd_requests"
               for sample in family.samples if sample.name == "ragd_requests_total"
               and sample.labels["route"] == "/v1/chat/completions" and sample.labels["status"] == "200")


def test_an_exact_hit_is_counted_logged_and_authenticated_like_any_request(keyed: Server) -> None:
    question = user("How long must a ship be to need a pilot in the Zentra harbor?")
    first = ask(keyed, KEY_A, question).json()
    before = _requests_total(keyed)
    hit = ask(keyed, KEY_A, question)
    assert hit.headers["x-ragd-cache"] == "exact"
    assert _requests_total(keyed) == before + 1
    payload = hit.json()
    assert payload["id"] != first["id"]
    for field in ("choices", "citations", "usage", "model", "object"):
        assert payload[field] == first[field], field
    request_id = hit.headers["x-request-id"]
    deadline = time.monotonic() + 10  # log lines are written by a writer thread
    entry: dict[str, object] = {}
    while time.monotonic() < deadline and not entry:
        time.sleep(0.1)
        entry = next((json.loads(line) for line in keyed.log.read_text(errors="replace").splitlines()
                      if request_id in line and line.startswith("{")), {})
    assert entry["tenant"] == "tenant-a" and entry["route"] == "/v1/chat/completions"
    assert entry["cache"] == "exact" and "cache_lookup" in entry["stages_ms"]  # type: ignore[operator]
    body = {"model": "ragd:docs", "messages": question, "max_tokens": 48, "stop": STOP}
    wrong = httpx.post(keyed.openai_base + "/chat/completions", json=body, timeout=30,
                       headers={"authorization": "Bearer sk-not-a-key-000000000000"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    other = httpx.post(keyed.openai_base + "/chat/completions", json=body, timeout=180,
                       headers={"authorization": f"Bearer {KEY_B}"})
    assert other.status_code == 200 and other.headers["x-ragd-cache"] == "miss"


def test_other_tenants_collections_are_absent(keyed: Server) -> None:
    headers = {"authorization": f"Bearer {KEY_B}"}
    for_b = httpx.get(keyed.openai_base + "/collections/docs/documents/ferry", headers=headers, timeout=10)
    assert for_b.status_code == 404  # tenant A has 'ferry'; B's collection of the same name does not
    models = httpx.get(keyed.openai_base + "/models", headers=headers, timeout=10).json()
    assert {m["id"] for m in models["data"]} == {"ragd", "ragd:docs", "ragd-chat", "ragd-embed"}


def test_ingest_bumps_epoch_and_the_same_question_misses(keyed: Server) -> None:
    question = user("How much does the Zentra ferry cost?")
    ask(keyed, KEY_A, question)
    assert ask(keyed, KEY_A, question).headers["x-ragd-cache"] == "exact"
    changed = {"id": "ferry", "title": "Ferry", "text": "The Zentra ferry to Mirel island now costs 15 euros."}
    response = httpx.post(keyed.openai_base + "/collections/docs/documents", json={"documents": [changed]},
                          headers={"authorization": f"Bearer {KEY_A}"}, timeout=300)
    assert response.json()["updated"] == ["ferry"]
    assert ask(keyed, KEY_A, question).headers["x-ragd-cache"] == "miss"


def test_follow_ups_after_different_questions_share_no_entry(keyed: Server) -> None:
    first = [{"role": "user", "content": "What does the Zentra ferry do?"},
             {"role": "assistant", "content": "It sails to Mirel island [1]."},
             {"role": "user", "content": "what about its price?"}]
    second = [{"role": "user", "content": "What are the Zentra harbor rules?"},
              {"role": "assistant", "content": "Long ships need a pilot [1]."},
              {"role": "user", "content": "what about its price?"}]
    assert ask(keyed, KEY_A, first).headers["x-ragd-cache"] == "miss"
    assert ask(keyed, KEY_A, second).headers["x-ragd-cache"] == "miss"
    assert ask(keyed, KEY_A, user("what about its price?")).headers["x-ragd-cache"] == "miss"
    assert ask(keyed, KEY_A, first).headers["x-ragd-cache"] in ("exact", "semantic")


def test_negation_misses(keyed: Server) -> None:
    ask(keyed, KEY_A, user("Do ships longer than 80 metres need a pilot in Zentra harbor?"))
    negated = ask(keyed, KEY_A, user("Do ships longer than 80 metres not need a pilot in Zentra harbor?"))
    assert negated.headers["x-ragd-cache"] == "miss"


def test_no_store_writes_nothing_and_no_cache_skips_reading(keyed: Server) -> None:
    question = user("Which island does the Zentra ferry sail to?")
    assert ask(keyed, KEY_A, question, cache_control="no-store").headers["x-ragd-cache"] == "miss"
    assert ask(keyed, KEY_A, question).headers["x-ragd-cache"] == "miss"
    assert ask(keyed, KEY_A, question, cache_control="no-cache").headers["x-ragd-cache"] == "bypass"
    assert ask(keyed, KEY_A, question).headers["x-ragd-cache"] == "exact"


def test_streaming_replay_matches_the_original(keyed: Server) -> None:
    question = "Who needs a pilot in the Zentra harbor?"
    original = ask(keyed, KEY_A, user(question)).json()
    client = openai.OpenAI(base_url=keyed.openai_base, api_key=KEY_A, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="ragd:docs", messages=user(question), max_tokens=48, stop=STOP, stream=True)
    assert raw.headers["x-ragd-cache"] == "exact"
    text, citations = "", None
    for chunk in raw.parse():
        citations = (chunk.model_extra or {}).get("citations", citations)
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == original["choices"][0]["message"]["content"]
    assert citations == original["citations"]


def test_redis_killed_mid_run_every_request_answered_then_recovers(keyed: Server,
                                                                  redis_proc: RedisProcess) -> None:
    question = user("What time does the Zentra harbor open in the morning?")
    ask(keyed, KEY_A, question)
    redis_proc.kill()
    try:
        for _ in range(3):
            response = ask(keyed, KEY_A, question)
            assert response.headers["x-ragd-cache"] == "bypass"
            assert "cache" in response.headers["x-ragd-degraded"]
            assert response.json()["choices"][0]["message"]["content"]
    finally:
        redis_proc.start()
    ask(keyed, KEY_A, question)  # Redis is empty again: this stores
    deadline = time.monotonic() + 30
    outcome = ""
    while time.monotonic() < deadline and outcome != "exact":
        outcome = ask(keyed, KEY_A, question).headers["x-ragd-cache"]
    assert outcome == "exact"
    metrics = httpx.get(keyed.base_url + "/metrics", timeout=10).text
    assert 'ragd_degradations_total{dependency="cache"}' in metrics


def test_no_cross_tenant_data_in_logs_or_metrics_and_no_keys_in_logs(keyed: Server) -> None:
    a = ask(keyed, KEY_A, user("Which ships need a pilot in the Zentra harbor?")).json()
    b = ask(keyed, KEY_B, user("Which ships need a pilot in the Zentra harbor?")).json()
    chunks_a = {c["chunk_id"] for c in a["citations"]}
    chunks_b = {c["chunk_id"] for c in b["citations"]}
    assert chunks_a and chunks_b and not chunks_a & chunks_b
    deadline = time.monotonic() + 10  # log lines are written by a listener thread
    lines: list[dict[str, object]] = []
    while time.monotonic() < deadline and len({line.get("tenant") for line in lines}) < 2:
        time.sleep(0.2)
        lines = [json.loads(line) for line in keyed.log.read_text(errors="replace").splitlines()
                 if line.startswith("{") and '"chunk_ids"' in line]
    assert {line.get("tenant") for line in lines} >= {"tenant-a", "tenant-b"}
    for line in lines:
        logged = set(line.get("chunk_ids", []))  # type: ignore[arg-type]
        other = chunks_b if line["tenant"] == "tenant-a" else chunks_a
        assert not logged & other, line
    log = keyed.log.read_text(errors="replace")
    for key in (KEY_A, KEY_B, KEY_ADMIN):
        assert key not in log
    metrics = httpx.get(keyed.base_url + "/metrics", timeout=10).text
    for secret in ("tenant-a", "tenant-b", KEY_A, KEY_B, "Zentra"):
        assert secret not in metrics
