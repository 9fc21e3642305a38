"""End to end through the official openai client: the legacy completions route (streamed and not, with
citations and OpenAI errors), citations in response headers, and the passage embedding model id."""

from __future__ import annotations

import json

import httpx
import numpy as np
import openai
import pytest

from tests.e2e.conftest import FIXTURE_CORPUS, Server
from tests.e2e.route_registry import covers

pytestmark = pytest.mark.e2e

FIXTURE_IDS = {p.name for p in FIXTURE_CORPUS.glob("*.md")}


def _client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base, api_key="none", max_retries=0, timeout=120)


@covers("POST", "/v1/completions")
def test_completions_answer_with_citations(server: Server) -> None:
    completion = _client(server).completions.create(model="ragd", prompt="When was the Aurora Lighthouse built?",
                                                    max_tokens=48)
    assert completion.object == "text_completion"
    assert completion.choices[0].text.strip()
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    citations = (completion.model_extra or {})["citations"]
    assert citations and {c["document_id"] for c in citations} <= FIXTURE_IDS
    assert "aurora-lighthouse.md" in {c["document_id"] for c in citations}


def test_completions_stream_text_then_citations_and_usage(server: Server) -> None:
    stream = _client(server).completions.create(model="ragd", prompt="푸른솔 도서관은 언제 문을 열었나요?",
                                                max_tokens=48, stream=True, stream_options={"include_usage": True})
    text, finish, citations, usage = "", None, None, None
    for chunk in stream:
        assert chunk.object == "text_completion"
        citations = (chunk.model_extra or {}).get("citations") or citations
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.text
            finish = choice.finish_reason or finish
    assert text.strip() and "\ufffd" not in text
    assert finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens > 0
    assert citations and "pureunsol-library.md" in {c["document_id"] for c in citations}


def test_completions_and_chat_share_the_answer_cache(server: Server) -> None:
    client = _client(server)
    question = "Which river does the Quillon Bridge cross?"
    first = client.completions.with_raw_response.create(model="ragd", prompt=question, max_tokens=32)
    chat = client.chat.completions.with_raw_response.create(
        model="ragd", messages=[{"role": "user", "content": question}], max_tokens=32)
    if first.parse().choices[0].finish_reason == "stop":  # only complete answers are stored
        assert chat.headers["x-ragd-cache"] in ("exact", "semantic")
        assert chat.parse().choices[0].message.content == first.parse().choices[0].text


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "ragd", "prompt": ""}, "prompt"),
    ({"model": "ragd", "prompt": ["one", "two"]}, "prompt"),
    ({"model": "ragd", "prompt": "hi", "echo": True}, "echo"),
    ({"model": "ragd", "prompt": "hi", "logprobs": 2}, "logprobs"),
    ({"model": "ragd", "prompt": "hi", "max_tokens": 100_000}, "max_tokens"),
    ({"model": "ragd", "prompt": "hi", "temperature": 9}, "temperature"),
])
def test_completions_refuse_bad_input_in_openai_format(server: Server, body: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _client(server).completions.create(**body)  # type: ignore[call-overload]
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == param and error["message"]


def test_completions_unknown_model_is_404(server: Server) -> None:
    with pytest.raises(openai.NotFoundError):
        _client(server).completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")


def test_citations_reach_clients_that_keep_only_headers(server: Server) -> None:
    client = _client(server)
    raw = client.chat.completions.with_raw_response.create(
        model="ragd", messages=[{"role": "user", "content": "How is Copperleaf tea dried?"}], max_tokens=48)
    header = json.loads(raw.headers["x-ragd-citations"])
    body = (raw.parse().model_extra or {})["citations"]
    assert [c["document_id"] for c in header] == [c["document_id"] for c in body]
    body = {"model": "ragd", "stream": True, "max_tokens": 8,
            "messages": [{"role": "user", "content": "What does the Copperleaf estate grow?"}]}
    with httpx.stream("POST", server.openai_base + "/chat/completions", json=body, timeout=120,
                      headers={"cache-control": "no-cache"}) as response:
        sources = json.loads(response.headers["x-ragd-sources"])
        response.read()
    assert sources and [s["index"] for s in sources] == list(range(1, len(sources) + 1))
    assert {s["document_id"] for s in sources} <= FIXTURE_IDS


def test_passage_model_id_embeds_passages_and_truncates_long_documents(server: Server) -> None:
    client = _client(server)
    text = "The lighthouse was built in 1871."
    by_id = client.embeddings.create(model="ragd-embed:passage", input=text, encoding_format="float")
    by_field = client.embeddings.create(model="ragd-embed", input=text, encoding_format="float",
                                        extra_body={"input_type": "passage"})
    query = client.embeddings.create(model="ragd-embed", input=text, encoding_format="float")
    assert by_id.model == "ragd-embed:passage"
    assert np.allclose(by_id.data[0].embedding, by_field.data[0].embedding, atol=1e-5)
    assert not np.allclose(by_id.data[0].embedding, query.data[0].embedding, atol=1e-3)
    long = client.embeddings.create(model="ragd-embed:passage", input="word " * 600)
    assert long.usage.prompt_tokens == 256  # the passage is embedded by its first tokens
    with pytest.raises(openai.BadRequestError):  # control: a query that long is still refused
        client.embeddings.create(model="ragd-embed", input="word " * 600)
    with pytest.raises(openai.BadRequestError):  # the id and the field must not contradict
        client.embeddings.create(model="ragd-embed:passage", input=text, extra_body={"input_type": "query"})
