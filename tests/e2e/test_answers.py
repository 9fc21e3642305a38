"""The README's questions against ``ragd serve --demo`` (a real server process, the default answer path) through
the official ``openai`` client: short, cited, finished answers that the exact cache serves on repeat, and
abstentions in the question's own language for questions the demo documents do not cover."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from gateway.cli import demo_corpus_path
from generator.settings import GeneratorSettings
from tests.e2e.conftest import Server, start_server, stop_server

pytestmark = pytest.mark.e2e

SETTINGS = GeneratorSettings()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("ragd-demo"), {"RAGD_GATEWAY_DEMO_CORPUS": str(demo_corpus_path())})
    yield srv
    stop_server(srv.process)


def _ask(server: Server, question: str) -> tuple[Any, dict[str, str]]:
    client = OpenAI(base_url=server.openai_base, api_key="unused", max_retries=0, timeout=120)
    raw = client.chat.completions.with_raw_response.create(
        model="ragd", messages=[{"role": "user", "content": question}])
    return raw.parse(), dict(raw.headers)


def _hangul(text: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in text)


@pytest.mark.parametrize(("question", "korean", "cited_title"), [
    ("What is reciprocal rank fusion?", False, "Reciprocal rank fusion"),
    ("시맨틱 캐시는 어떻게 동작하나요?", True, "의미 기반 캐시"),
])
def test_readme_questions_get_short_cited_finished_answers_cached_on_repeat(
        demo: Server, question: str, korean: bool, cited_title: str) -> None:
    answer, headers = _ask(demo, question)
    text = answer.choices[0].message.content
    citations = (answer.model_extra or {})["citations"]
    assert answer.choices[0].finish_reason == "stop"
    assert citations and any(cited_title in c["title"] for c in citations)
    assert f"[{citations[0]['index']}]" in text and "Sources:" not in text
    assert len(text) < 600 and _hangul(text) == korean
    assert headers["x-ragd-cache"] == "miss"
    again, headers = _ask(demo, question)
    assert headers["x-ragd-cache"] == "exact" and again.choices[0].message.content == text


@pytest.mark.parametrize(("question", "cited_title"), [
    ("하이브리드 검색에 대해 설명해 주세요.", "하이브리드 검색"),
    ("테넌트 격리의 개념을 알려 주세요.", "테넌트"),
    ("vLLM 서빙에 대해 간단히 설명해 줄래요?", "vLLM"),
    ("Tell me about hybrid retrieval.", "Hybrid retrieval"),
    ("Help me understand HNSW index tuning.", "HNSW"),
])
def test_requests_about_the_documents_are_answered_not_declined(demo: Server, question: str,
                                                                cited_title: str) -> None:
    """A chat-style request ("X에 대해 설명해 주세요", "tell me about X") names its topic among words that say
    how to answer; those words are in no document, and must not make the evidence look weak."""
    answer, _ = _ask(demo, question)
    text = answer.choices[0].message.content
    citations = (answer.model_extra or {})["citations"]
    assert text not in (SETTINGS.abstain_text_en, SETTINGS.abstain_text_ko)
    assert citations and any(cited_title in c["title"] for c in citations), citations
    assert _hangul(text) == _hangul(question)


@pytest.mark.parametrize(("question", "expected"), [
    ("What is the capital of France?", SETTINGS.abstain_text_en),
    ("프랑스의 수도는 어디인가요?", SETTINGS.abstain_text_ko),
])
def test_questions_outside_the_documents_abstain_in_their_language(demo: Server, question: str,
                                                                   expected: str) -> None:
    answer, _ = _ask(demo, question)
    assert answer.choices[0].message.content == expected
    assert answer.choices[0].finish_reason == "stop" and (answer.model_extra or {})["citations"] == []
    metrics = httpx.get(demo.base_url + "/metrics", timeout=10).text
    language = "ko" if _hangul(question) else "en"
    assert f'ragd_abstentions_total{{language="{language}"}}' in metrics


def test_an_abstention_streams_and_is_cached_like_any_finished_answer(demo: Server) -> None:
    client = OpenAI(base_url=demo.openai_base, api_key="unused", max_retries=0, timeout=120)
    question = [{"role": "user", "content": "Who won the football world cup in 1998?"}]
    pieces, finish, citations = [], None, None
    for chunk in client.chat.completions.create(model="ragd", messages=question, stream=True):  # type: ignore[arg-type]
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
        if (chunk.model_extra or {}).get("citations") is not None:
            citations = chunk.model_extra["citations"]  # type: ignore[index]
    assert "".join(pieces) == SETTINGS.abstain_text_en and finish == "stop" and citations == []
    _, headers = _ask(demo, question[0]["content"])
    assert headers["x-ragd-cache"] == "exact"

