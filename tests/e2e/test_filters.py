"""Metadata filters through the API of a real server, in English and Korean: search and the chat
extension ``ragd.filter`` return only documents whose metadata match, on the BM25 and the dense side
alike (before fusion); bad filters are clear 400s beside a valid control; the filter is part of the
cache key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

DOCS: list[dict[str, Any]] = [
    {"id": "en-winter", "title": "Marlow ferry in winter",
     "text": "The Marlow ferry timetable changes in winter: boats leave the harbour every hour.",
     "metadata": {"source": "winter.md", "language": "en", "tags": ["ferry", "winter"], "published": "2023-11-02",
                  "year": 2023, "draft": False}},
    {"id": "en-summer", "title": "Marlow ferry in summer",
     "text": "The Marlow ferry timetable for summer: boats leave the harbour every twenty minutes.",
     "metadata": {"source": "summer.md", "language": "en", "tags": ["ferry", "summer"], "published": "2024-06-15",
                  "year": 2024, "draft": False}},
    {"id": "en-draft", "title": "Marlow ferry night crossing",
     "text": "Draft note: the Marlow ferry may add a night crossing from the harbour next year.",
     "metadata": {"source": "draft.md", "language": "en", "tags": ["ferry"], "published": "2024-09-01T09:30:00+09:00",
                  "year": 2024, "draft": True}},
    {"id": "ko-winter", "title": "마를로 여객선 겨울 시간표",
     "text": "마를로 여객선은 겨울에 항구에서 한 시간마다 출발합니다.",
     "metadata": {"source": "겨울.md", "language": "ko", "tags": ["여객선", "겨울"], "published": "2023-12-01",
                  "year": 2023, "team": "운항팀"}},
    {"id": "ko-summer", "title": "마를로 여객선 여름 시간표",
     "text": "마를로 여객선은 여름에 항구에서 이십 분마다 출발합니다.",
     "metadata": {"source": "여름.md", "language": "ko", "tags": ["여객선", "여름"], "published": "2024-07-01",
                  "year": 2024, "team": "관광팀"}},
]
ALL = {d["id"] for d in DOCS}
STOP = ["\n", ". "]  # short, complete answers: only those are cached


@pytest.fixture(scope="module")
def collection(server: Server) -> Iterator[str]:
    name = f"filters-{uuid.uuid4().hex[:8]}"
    assert httpx.post(server.openai_base + "/collections", json={"name": name}, timeout=60).status_code == 201
    added = httpx.post(server.openai_base + f"/collections/{name}/documents", json={"documents": DOCS}, timeout=600)
    assert added.status_code == 200, added.text
    yield name
    httpx.delete(server.openai_base + f"/collections/{name}", timeout=60)


def search(server: Server, name: str, query: str, where: object = None, top_k: int = 10) -> httpx.Response:
    body: dict[str, object] = {"query": query, "top_k": top_k}
    if where is not None:
        body["filter"] = where
    return httpx.post(server.openai_base + f"/collections/{name}/search", json=body, timeout=120)


def found(server: Server, name: str, query: str, where: object = None) -> list[dict[str, Any]]:
    response = search(server, name, query, where)
    assert response.status_code == 200, response.text
    chunks: list[dict[str, Any]] = response.json()["data"]
    return chunks


FILTERS: list[tuple[str, str, dict[str, Any], set[str]]] = [
    ("equality", "Marlow ferry timetable harbour", {"year": 2024}, {"en-summer", "en-draft", "ko-summer"}),
    ("$eq on a string", "Marlow ferry timetable", {"source": {"$eq": "winter.md"}}, {"en-winter"}),
    ("$ne on a boolean (missing field passes)", "Marlow ferry harbour", {"draft": {"$ne": True}},
     ALL - {"en-draft"}),
    ("$in on a list field", "ferry timetable", {"tags": {"$in": ["summer", "여름"]}}, {"en-summer", "ko-summer"}),
    ("$nin", "ferry timetable harbour", {"source": {"$nin": ["winter.md", "summer.md", "draft.md"]}},
     {"ko-winter", "ko-summer"}),
    ("numeric range", "ferry harbour", {"year": {"$gte": 2023, "$lt": 2024}}, {"en-winter", "ko-winter"}),
    ("date range", "ferry harbour", {"published": {"$gte": "2024-06-01", "$lte": "2024-08-31"}},
     {"en-summer", "ko-summer"}),
    ("date-time with a zone", "ferry night crossing", {"published": {"$gt": "2024-09-01T00:00:00Z"}}, {"en-draft"}),
    ("$and", "ferry timetable", {"$and": [{"language": "en"}, {"draft": False}]}, {"en-winter", "en-summer"}),
    ("$or", "ferry", {"$or": [{"team": "운항팀"}, {"source": "summer.md"}]}, {"ko-winter", "en-summer"}),
    ("nothing matches", "ferry", {"year": 1999}, set()),
]


@pytest.mark.parametrize(("case", "query", "where", "expected"), FILTERS, ids=[f[0] for f in FILTERS])
def test_search_returns_only_matching_documents(server: Server, collection: str, case: str, query: str,
                                                where: dict[str, Any], expected: set[str]) -> None:
    unfiltered = {c["doc_id"] for c in found(server, collection, query)}
    assert unfiltered - expected, f"{case}: the query alone must also find documents the filter excludes"
    chunks = found(server, collection, query, where)
    assert {c["doc_id"] for c in chunks} == expected, case
    for chunk in chunks:  # each result carries the metadata it was allowed by
        assert chunk["metadata"] == next(d["metadata"] for d in DOCS if d["id"] == chunk["doc_id"])


def test_filter_applies_before_fusion_on_both_sides(server: Server, collection: str) -> None:
    """A filter that keeps documents the query ranks last still fills the result from them, ranked by
    the BM25 and the dense side alike (a filter after fusion would have cut them at top_k)."""
    query = "Marlow ferry timetable winter every hour"
    unfiltered = found(server, collection, query)
    assert unfiltered[0]["doc_id"] in {"en-winter", "ko-winter"}
    chunks = found(server, collection, query, {"year": 2024, "language": "en"})
    assert {c["doc_id"] for c in chunks} == {"en-summer", "en-draft"}
    sides = {side for c in chunks for side in c["ranks"]}
    assert {"bm25", "dense"} <= sides, chunks
    response = search(server, collection, query, {"year": 2024, "language": "en"}, top_k=1)
    assert [c["doc_id"] for c in response.json()["data"]] in (["en-summer"], ["en-draft"])


def test_korean_question_filtered_by_korean_metadata(server: Server, collection: str) -> None:
    question = "마를로 여객선은 얼마나 자주 출발하나요?"
    assert {c["doc_id"] for c in found(server, collection, question)} >= {"ko-winter", "ko-summer"}
    assert {c["doc_id"] for c in found(server, collection, question, {"team": "운항팀"})} == {"ko-winter"}
    assert {c["doc_id"] for c in found(server, collection, question, {"tags": "여름"})} == {"ko-summer"}
    client = openai.OpenAI(base_url=server.openai_base, api_key="none", max_retries=0, timeout=180)
    completion = client.chat.completions.create(
        model=f"ragd:{collection}", max_tokens=24, messages=[{"role": "user", "content": question}],
        extra_body={"ragd": {"filter": {"$and": [{"language": "ko"}, {"published": {"$gte": "2024-01-01"}}]}}})
    citations = (completion.model_extra or {}).get("citations") or []
    assert citations and {c["document_id"] for c in citations} == {"ko-summer"}, citations


def test_english_chat_cites_only_filtered_documents(server: Server, collection: str) -> None:
    client = openai.OpenAI(base_url=server.openai_base, api_key="none", max_retries=0, timeout=180)
    completion = client.chat.completions.create(
        model=f"ragd:{collection}", max_tokens=24,
        messages=[{"role": "user", "content": "How often does the Marlow ferry leave the harbour?"}],
        extra_body={"ragd": {"filter": {"tags": {"$in": ["winter"]}}}})
    citations = (completion.model_extra or {}).get("citations") or []
    assert citations and {c["document_id"] for c in citations} == {"en-winter"}, citations


def _ask(server: Server, collection: str, question: str, where: object = None) -> httpx.Response:
    body: dict[str, Any] = {"model": f"ragd:{collection}", "max_tokens": 48, "stop": STOP,
                            "messages": [{"role": "user", "content": question}]}
    if where is not None:
        body["ragd"] = {"filter": where}
    response = httpx.post(server.openai_base + "/chat/completions", json=body, timeout=180)
    assert response.status_code == 200, response.text
    return response


def test_the_filter_is_part_of_the_cache_key(server: Server, collection: str) -> None:
    question = f"Does the Marlow ferry run at night? ({uuid.uuid4().hex[:6]})"
    first = _ask(server, collection, question, {"year": 2024})
    assert first.json()["choices"][0]["finish_reason"] == "stop"  # complete, so it was stored
    assert first.headers["x-ragd-cache"] == "miss"
    assert _ask(server, collection, question, {"year": {"$eq": 2024}}).headers["x-ragd-cache"] == "miss"
    assert _ask(server, collection, question, {"year": 2023}).headers["x-ragd-cache"] == "miss"
    assert _ask(server, collection, question).headers["x-ragd-cache"] == "miss"
    again = _ask(server, collection, question, {"year": 2024})
    assert again.headers["x-ragd-cache"] == "exact" and again.json() == first.json() | {
        "id": again.json()["id"], "created": again.json()["created"]}


BAD_FILTERS: list[tuple[str, object, str]] = [
    ("unknown operator", {"year": {"$regex": "20.."}}, "Unknown operator '$regex'"),
    ("unknown top-level operator", {"$not": {"year": 2024}}, "Unknown operator '$not'"),
    ("range on a word", {"year": {"$gt": "recent"}}, "number or an ISO date"),
    ("$in not a list", {"tags": {"$in": "ferry"}}, "list"),
    ("empty $in", {"tags": {"$in": []}}, "list"),
    ("nested object as a value", {"year": {"$eq": {"a": 1}}}, "string, number or boolean"),
    ("empty $and", {"$and": []}, "non-empty list"),
    ("too deep", {"$and": [{"$and": [{"$and": [{"$and": [{"$and": [{"$and": [{"$and": [{"year": 1}]}]}]}]}]}]}]},
     "deeper"),
    ("empty filter", {}, "non-empty"),
    ("not an object", "year=2024", "dictionary"),
]


@pytest.mark.parametrize(("case", "where", "says"), BAD_FILTERS, ids=[b[0] for b in BAD_FILTERS])
def test_bad_filter_is_a_clear_400_beside_a_valid_control(server: Server, collection: str, case: str,
                                                         where: object, says: str) -> None:
    refused = search(server, collection, "ferry", where)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "filter" and says in error["message"], error
    chat = httpx.post(server.openai_base + "/chat/completions", timeout=60, json={
        "model": f"ragd:{collection}", "messages": [{"role": "user", "content": "ferry?"}], "ragd": {"filter": where}})
    assert chat.status_code == 400 and chat.json()["error"]["param"] == "ragd.filter", chat.text
    assert {c["doc_id"] for c in found(server, collection, "ferry", {"year": 2023})} == {"en-winter", "ko-winter"}
