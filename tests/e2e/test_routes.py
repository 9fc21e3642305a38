"""Every public route proven with valid input through a real client against a real server process:
the official openai SDK where it covers the route, httpx for the REST routes (the upload route is
proven with curl in test_uploads.py). ``test_every_public_route_has_a_positive_test`` fails when the
app serves a route no ``@covers`` test proves."""

from __future__ import annotations

import importlib
import uuid
from typing import Any

import httpx
import openai
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.e2e.conftest import ADMIN_KEY, LIMITED_TENANT, Server
from tests.e2e.route_registry import COVERED, covers, public_routes

pytestmark = pytest.mark.e2e

# the modules holding @covers tests (imported here so the registry is complete in any test selection)
COVERING_MODULES = ("tests.e2e.test_routes", "tests.e2e.test_uploads", "tests.e2e.test_filters",
                    "tests.e2e.test_keys_replicas", "tests.e2e.test_completions_and_clients")


def _sdk(server: Server, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base, api_key=key, max_retries=0, timeout=180)


def test_every_public_route_has_a_positive_test() -> None:
    for module in COVERING_MODULES:
        importlib.import_module(module)
    served = public_routes(create_app(GatewaySettings()))
    assert ("POST", "/v1/collections/{name}/files") in served and ("GET", "/health") in served
    untested = sorted(served - COVERED.keys())
    assert not untested, f"public routes without a positive end-to-end test: {untested}"
    stale = sorted(COVERED.keys() - served)
    assert not stale, f"@covers marks for routes the app does not serve: {stale}"


# ---------------------------------------------------------------- operations

@covers("GET", "/health")
def test_health(server: Server) -> None:
    response = httpx.get(server.base_url + "/health", timeout=30)
    assert response.status_code == 200 and response.json() == {"status": "ok", "service": "gateway"}


@covers("GET", "/ready")
def test_ready(server: Server) -> None:
    response = httpx.get(server.base_url + "/ready", timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ready"] is True and body["checks"] and all(body["checks"].values())
    assert {"started", "retriever", "guardrails"} <= set(body["checks"])  # the pieces it runs in process
    deep = httpx.get(server.base_url + "/ready", params={"deep": "1"}, timeout=30).json()["dependencies"]
    assert deep["retriever"]["mode"] == deep["guardrails"]["mode"] == "in-process"
    assert deep["retriever"]["checks"] == {"models": True, "store": True}
    assert deep["guardrails"]["checks"] == {"models": True}


@covers("GET", "/metrics")
def test_metrics(server: Server) -> None:
    httpx.get(server.base_url + "/health", timeout=30)
    response = httpx.get(server.base_url + "/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "ragd_requests_total" in response.text or "ragd_request" in response.text


@covers("GET", "/openapi.json")
def test_openapi_schema(server: Server) -> None:
    response = httpx.get(server.base_url + "/openapi.json", timeout=30)
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/v1/chat/completions" in paths and "/v1/collections/{name}/search" in paths


@covers("GET", "/docs")
def test_swagger_ui(server: Server) -> None:
    response = httpx.get(server.base_url + "/docs", timeout=30)
    assert response.status_code == 200 and "swagger-ui" in response.text and "/openapi.json" in response.text


@covers("GET", "/docs/oauth2-redirect")
def test_swagger_oauth2_redirect_page(server: Server) -> None:
    response = httpx.get(server.base_url + "/docs/oauth2-redirect", timeout=30)
    assert response.status_code == 200 and "oauth2" in response.text.lower()


@covers("GET", "/redoc")
def test_redoc(server: Server) -> None:
    response = httpx.get(server.base_url + "/redoc", timeout=30)
    assert response.status_code == 200 and "redoc" in response.text.lower()


# ---------------------------------------------------------------- OpenAI-compatible, through the SDK

@covers("GET", "/v1/models")
def test_models_through_the_sdk(server: Server) -> None:
    ids = {m.id for m in _sdk(server).models.list()}
    assert {"ragd", "ragd:default", "ragd-embed"} <= ids


@covers("POST", "/v1/chat/completions")
def test_chat_through_the_sdk(server: Server) -> None:
    completion = _sdk(server).chat.completions.create(
        model="ragd", max_tokens=24, messages=[{"role": "user", "content": "When was the Aurora Lighthouse built?"}])
    assert completion.object == "chat.completion" and completion.choices[0].message.content
    assert (completion.model_extra or {}).get("citations")


@covers("POST", "/v1/chat/completions")
def test_streamed_chat_through_the_sdk(server: Server) -> None:
    stream = _sdk(server).chat.completions.create(
        model="ragd:default", max_tokens=24, stream=True,
        messages=[{"role": "user", "content": "What does the Aurora Lighthouse guide?"}])
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces).strip()


@covers("POST", "/v1/embeddings")
def test_embeddings_through_the_sdk(server: Server) -> None:
    result = _sdk(server).embeddings.create(model="ragd-embed", input=["harbour ferry", "항구 여객선"])
    assert len(result.data) == 2 and len(result.data[0].embedding) == len(result.data[1].embedding) > 100


# ---------------------------------------------------------------- a missing collection says so

def test_chat_to_a_missing_collection_names_it_beside_a_valid_control(server: Server) -> None:
    client = _sdk(server)
    question = [{"role": "user", "content": "When was the Aurora Lighthouse built?"}]
    with pytest.raises(openai.NotFoundError) as by_model:
        client.chat.completions.create(model="ragd:nope", max_tokens=16, messages=question)  # type: ignore[arg-type]
    error = by_model.value.body
    assert isinstance(error, dict) and error["code"] == "collection_not_found" and error["param"] == "model"
    assert "'nope' does not exist" in error["message"] and "POST /v1/collections" in error["message"]
    with pytest.raises(openai.NotFoundError) as by_extension:
        client.chat.completions.create(model="ragd", max_tokens=16, messages=question,  # type: ignore[arg-type]
                                       extra_body={"ragd": {"collection": "nope-too"}})
    error = by_extension.value.body
    assert isinstance(error, dict) and error["code"] == "collection_not_found"
    assert error["param"] == "ragd.collection" and "'nope-too' does not exist" in error["message"]
    with pytest.raises(openai.NotFoundError) as foreign:
        client.chat.completions.create(model="gpt-4o", max_tokens=16, messages=question)  # type: ignore[arg-type]
    assert isinstance(foreign.value.body, dict) and foreign.value.body["code"] == "model_not_found"
    control = client.chat.completions.create(model="ragd:default", max_tokens=16,
                                             messages=question)  # type: ignore[arg-type]
    assert control.choices[0].message.content


# ---------------------------------------------------------------- corpus REST, through httpx

@covers("POST", "/v1/collections")
@covers("GET", "/v1/collections")
@covers("POST", "/v1/collections/{name}/documents")
@covers("GET", "/v1/collections/{name}/documents/{doc_id}")
@covers("POST", "/v1/collections/{name}/search")
@covers("DELETE", "/v1/collections/{name}/documents/{doc_id}")
@covers("DELETE", "/v1/collections/{name}")
def test_collection_lifecycle_over_rest(server: Server) -> None:
    api = server.openai_base
    name = f"routes-{uuid.uuid4().hex[:8]}"
    with httpx.Client(timeout=300) as http:
        created = http.post(api + "/collections", json={"name": name, "config": {"hnsw_m": 12}})
        assert created.status_code == 201 and created.json()["name"] == name, created.text
        assert created.json()["config"]["hnsw_m"] == 12
        docs: list[dict[str, Any]] = [
            {"id": "kettle", "title": "Kettle", "text": "The copper kettle in Vanta hall whistles at dawn.",
             "metadata": {"room": "hall"}},
            {"id": "clock", "title": "Clock", "text": "The Vanta tower clock chimes thirteen times at noon."}]
        added = http.post(api + f"/collections/{name}/documents", json={"documents": docs})
        assert added.status_code == 200 and sorted(added.json()["added"]) == ["clock", "kettle"], added.text
        listed = {c["name"]: c for c in http.get(api + "/collections").json()["data"]}
        assert listed[name]["documents"] == 2 and listed[name]["chunks"] >= 2
        got = http.get(api + f"/collections/{name}/documents/kettle").json()
        assert got["text"] == docs[0]["text"] and got["metadata"] == {"room": "hall"} and got["chunk_ids"]
        found = http.post(api + f"/collections/{name}/search", json={"query": "tower clock noon", "top_k": 2})
        assert found.status_code == 200 and found.json()["data"][0]["doc_id"] == "clock", found.text
        deleted = http.delete(api + f"/collections/{name}/documents/kettle")
        assert deleted.status_code == 200 and deleted.json()["deleted"] == ["kettle"]
        assert http.get(api + f"/collections/{name}/documents/kettle").status_code == 404
        assert http.delete(api + f"/collections/{name}").status_code == 204
        assert name not in {c["name"] for c in http.get(api + "/collections").json()["data"]}


@covers("POST", "/v1/admin/keys")
def test_admin_creates_a_key_that_works(limited: Server) -> None:
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    created = httpx.post(limited.openai_base + "/admin/keys", json={"tenant": "guest", "role": "user"},
                         headers=admin, timeout=60)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["tenant"] == "guest" and body["role"] == "user" and body["key"].startswith("rk-")
    guest = _sdk(limited, body["key"])
    assert {m.id for m in guest.models.list()} >= {"ragd", "ragd-embed"}
    refused = httpx.post(limited.openai_base + "/admin/keys", json={"tenant": LIMITED_TENANT},
                         headers={"authorization": f"Bearer {body['key']}"}, timeout=60)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_permissions"
