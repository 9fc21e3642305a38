"""End to end: `ragd serve` in its own process, driven over real HTTP by the official openai client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from tests.e2e.conftest import FIXTURE_CORPUS, Server

pytestmark = pytest.mark.e2e

FIXTURE_IDS = {p.name for p in FIXTURE_CORPUS.glob("*.md")}


def _client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base, api_key="none", max_retries=0, timeout=120)


def _assert_valid_citations(citations: list[dict[str, object]], expected_doc: str) -> None:
    assert citations, "the answer carries no citations"
    for citation in citations:
        assert set(citation) >= {"index", "document_id", "title", "chunk_id", "score", "snippet"}
        assert citation["document_id"] in FIXTURE_IDS
    assert expected_doc in {c["document_id"] for c in citations}


def test_non_streaming_answer_cites_existing_documents(server: Server) -> None:
    completion = _client(server).chat.completions.create(
        model="ragd", messages=[{"role": "user", "content": "When was the Aurora Lighthouse built?"}],
        max_tokens=48)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    citations = (completion.model_extra or {})["citations"]
    _assert_valid_citations(citations, "aurora-lighthouse.md")
    assert "[" in completion.choices[0].message.content


@pytest.mark.parametrize(("question", "expected"), [
    ("How is Copperleaf tea dried?", "copperleaf-tea.md"),
    ("푸른솔 도서관은 언제 문을 열었나요?", "pureunsol-library.md"),
])
def test_streaming_answer_with_citations_before_done(server: Server, question: str, expected: str) -> None:
    stream = _client(server).chat.completions.create(
        model="ragd", messages=[{"role": "user", "content": question}], stream=True, max_tokens=48,
        stream_options={"include_usage": True})
    text, citations, finish, usage = "", None, None, None
    for chunk in stream:
        extra = chunk.model_extra or {}
        if extra.get("citations") is not None:
            citations = extra["citations"]
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text.strip()
    assert finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens > 0
    assert citations is not None
    _assert_valid_citations(citations, expected)


def test_raw_sse_shape(server: Server) -> None:
    body = {"model": "ragd", "stream": True, "max_tokens": 16,
            "messages": [{"role": "user", "content": "Which river does the Quillon Bridge cross?"}]}
    with httpx.stream("POST", server.openai_base + "/chat/completions", json=body, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-ragd-cache"] in ("miss", "bypass", "exact", "semantic")
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "citations" in chunks[-1] and chunks[-1]["choices"][0]["finish_reason"]


def test_models_lists_the_default_collection(server: Server) -> None:
    ids = [m.id for m in _client(server).models.list()]
    assert "ragd" in ids and "ragd:default" in ids and "ragd-embed" in ids


def test_embeddings_with_the_official_client(server: Server) -> None:
    client = _client(server)
    texts = ["The lighthouse was built in 1871.", "등대는 1871년에 세워졌다.", "Copperleaf tea is dried in the sun."]
    # the client asks for base64 unless told otherwise, and decodes it
    result = client.embeddings.create(model="ragd-embed", input=texts)
    assert result.model == "ragd-embed" and [d.index for d in result.data] == [0, 1, 2]
    vectors = np.asarray([d.embedding for d in result.data])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert result.usage.prompt_tokens == result.usage.total_tokens > 10
    # multilingual: the Korean sentence is nearer its English translation than the unrelated English one
    assert vectors[1] @ vectors[0] > vectors[1] @ vectors[2]
    plain = client.embeddings.create(model="ragd-embed", input=texts[0], encoding_format="float")
    assert np.allclose(plain.data[0].embedding, vectors[0], atol=1e-5)
    passage = client.embeddings.create(model="ragd-embed", input=texts[0], extra_body={"input_type": "passage"})
    assert not np.allclose(passage.data[0].embedding, vectors[0], atol=1e-3)


@pytest.mark.parametrize(("body", "status", "param", "code"), [
    ({"model": "text-embedding-3-small", "input": "hi"}, 404, "model", "model_not_found"),
    ({"model": "ragd-embed", "input": [1, 2, 3]}, 400, "input", None),
    ({"model": "ragd-embed", "input": ["ok", " "]}, 400, "input", None),
    ({"model": "ragd-embed", "input": []}, 400, "input", None),
    ({"model": "ragd-embed", "input": "word " * 600}, 400, "input", "context_length_exceeded"),
    ({"model": "ragd-embed", "input": "hi", "dimensions": 1536}, 400, "dimensions", None),
    ({"model": "ragd-embed", "input": "hi", "encoding_format": "int8"}, 400, None, None),
])
def test_embeddings_refuse_bad_input_in_openai_format(server: Server, body: dict[str, object], status: int,
                                                      param: str | None, code: str | None) -> None:
    response = httpx.post(server.openai_base + "/embeddings", json=body, timeout=60)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and error["type"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code


def test_embeddings_truncate_on_request(server: Server) -> None:
    body = {"model": "ragd-embed", "input": "word " * 600, "truncate": True}
    response = httpx.post(server.openai_base + "/embeddings", json=body, timeout=60)
    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens"] == 256


def test_metrics_show_retrieve_and_generate_stages(server: Server) -> None:
    _client(server).chat.completions.create(
        model="ragd", messages=[{"role": "user", "content": "What colour is Copperleaf tea?"}], max_tokens=8)
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    assert 'ragd_stage_seconds_count{stage="retrieve"}' in text
    assert 'ragd_stage_seconds_count{stage="generate"}' in text


def test_reingesting_the_same_documents_adds_no_chunks(server: Server) -> None:
    docs = [{"id": p.name, "title": p.stem, "text": p.read_text(encoding="utf-8")}
            for p in sorted(Path(FIXTURE_CORPUS).glob("*.md"))]
    url = server.openai_base + "/collections/default/documents"
    first = httpx.post(url, json={"documents": docs}, timeout=300)
    assert first.status_code == 200, first.text
    second = httpx.post(url, json={"documents": docs}, timeout=300).json()
    assert second["chunks_added"] == 0
    assert second["added"] == [] and second["updated"] == []
    assert sorted(second["unchanged"]) == sorted(d["id"] for d in docs)


ERROR_CASES = [
    ("malformed json", b"{\"model\": \"ragd\", \"messages\": [", 400, None),
    ("empty messages", {"model": "ragd", "messages": []}, 400, "messages"),
    ("wrong type", {"model": "ragd", "messages": "hello"}, 400, "messages"),
    ("bad temperature", {"model": "ragd", "temperature": 9, "messages": [{"role": "user", "content": "hi"}]},
     400, "temperature"),
    ("last not user", {"model": "ragd", "messages": [{"role": "assistant", "content": "hi"}]}, 400, "messages"),
    ("unknown model", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
    ("unknown collection", {"model": "ragd:nope", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
    ("max_tokens too big", {"model": "ragd", "max_tokens": 10**6, "messages": [{"role": "user", "content": "hi"}]},
     400, "max_tokens"),
]


@pytest.mark.parametrize(("name", "body", "status", "param"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_requests_get_openai_errors(server: Server, name: str, body: object, status: int,
                                        param: str | None) -> None:
    url = server.openai_base + "/chat/completions"
    if isinstance(body, bytes):
        response = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
    else:
        response = httpx.post(url, json=body, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"]
    if param is not None:
        assert error["param"] is not None and error["param"].startswith(param)


def test_oversize_body_is_413(server: Server) -> None:
    big = {"model": "ragd", "messages": [{"role": "user", "content": "x" * 2_000_000}]}
    response = httpx.post(server.openai_base + "/chat/completions", json=big, timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_sdk_raises_typed_errors(server: Server) -> None:
    with pytest.raises(openai.NotFoundError):
        _client(server).chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        _client(server).chat.completions.create(model="ragd", messages=[])


def test_ragd_ingest_of_the_same_folder_into_a_running_server_adds_no_chunks(server: Server) -> None:
    command = [sys.executable, "-m", "services.cli", "ingest", str(FIXTURE_CORPUS), "--collection", "default",
               "--url", server.base_url]
    outputs = [subprocess.run(command, capture_output=True, text=True, timeout=600) for _ in range(2)]
    for done in outputs:
        assert done.returncode == 0, done.stderr
    n = len(FIXTURE_IDS)
    assert f"0 added, 0 updated, {n} unchanged, 0 chunks added" in outputs[1].stdout
