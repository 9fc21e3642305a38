"""The metadata filter grammar: validation, evaluation (the one predicate both retrieval sides use),
its digest, and its place in the cache key."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cache.keys import CacheScope, exact_key, partition_key
from gateway.openai_schema import SearchRequest
from services.contracts import GenerationParams, RetrieveRequest
from services.filters import FilterError, check_filter, filter_digest, matches

DOC: dict[str, Any] = {"source": "a.md", "language": "ko", "tags": ["ferry", "여름"], "year": 2024,
                       "score": 0.5, "draft": False, "published": "2024-06-15", "team": "운항팀"}


@pytest.mark.parametrize(("where", "expected"), [
    ({"language": "ko"}, True),
    ({"language": "en"}, False),
    ({"year": 2024.0}, True),
    ({"draft": 0}, False),  # a boolean never equals a number
    ({"year": "2024"}, False),  # nor a string a number
    ({"tags": "ferry"}, True),  # a list field matches when any element does
    ({"tags": {"$ne": "ferry"}}, False),
    ({"tags": {"$nin": ["bus", "train"]}}, True),
    ({"tags": {"$in": ["bus", "여름"]}}, True),
    ({"missing": {"$ne": "x"}}, True),  # a document without the field matches $ne and $nin only
    ({"missing": {"$nin": ["x"]}}, True),
    ({"missing": {"$eq": "x"}}, False),
    ({"missing": {"$gt": 1}}, False),
    ({"year": {"$gte": 2024, "$lt": 2025}}, True),
    ({"score": {"$gt": 0.5}}, False),
    ({"score": {"$lte": 0.5}}, True),
    ({"published": {"$gte": "2024-06-01", "$lte": "2024-06-30"}}, True),
    ({"published": {"$gt": "2024-06-15T00:00:00Z"}}, False),
    ({"published": {"$gt": "2024-06-15T08:00:00+09:00"}}, True),  # 2024-06-14T23:00Z
    ({"source": {"$gt": "2020-01-01"}}, False),  # not a date: no order
    ({"$and": [{"language": "ko"}, {"team": "운항팀"}]}, True),
    ({"$or": [{"language": "en"}, {"year": 2023}]}, False),
    ({"$or": [{"language": "en"}, {"$and": [{"year": 2024}, {"draft": False}]}]}, True),
    ({"language": "ko", "year": 2023}, False),  # several fields: all must hold
])
def test_matches(where: dict[str, Any], expected: bool) -> None:
    assert matches(check_filter(where), DOC) is expected


@pytest.mark.parametrize(("where", "says"), [
    ({}, "non-empty"),
    ({"year": {"$regex": "x"}}, "Unknown operator '$regex'"),
    ({"$not": {"year": 1}}, "Unknown operator '$not'"),
    ({"year": {}}, "must name an operator"),
    ({"year": {"$gt": "soon"}}, "number or an ISO date"),
    ({"year": {"$gt": True}}, "number or an ISO date"),
    ({"year": {"$eq": [1]}}, "string, number or boolean"),
    ({"tags": {"$in": []}}, "list of 1 to"),
    ({"tags": {"$in": [["a"]]}}, "list of strings"),
    ({"$and": []}, "non-empty list"),
    ({"$or": {"a": 1}}, "non-empty list"),
    ({"$and": [{"$and": [{"$and": [{"$and": [{"$and": [{"$and": [{"$and": [{"a": 1}]}]}]}]}]}]}]}, "deeper"),
    ({f"f{i}": i for i in range(65)}, "more than 64"),
    ({"x" * 129: 1}, "1 to 128 characters"),
])
def test_invalid_filters_say_why(where: dict[str, Any], says: str) -> None:
    with pytest.raises(FilterError, match=None) as raised:
        check_filter(where)
    assert says in str(raised.value)


def test_wire_models_refuse_a_bad_filter_and_keep_a_good_one() -> None:
    with pytest.raises(ValidationError, match="Unknown operator"):
        SearchRequest.model_validate({"query": "q", "filter": {"a": {"$like": 1}}})
    with pytest.raises(ValidationError, match="Unknown operator"):
        RetrieveRequest.model_validate({"tenant": "t", "collection": "c", "query": "q", "filter": {"$nor": []}})
    good = RetrieveRequest(tenant="t", collection="c", query="q", filter={"year": {"$gte": 2024}})
    assert RetrieveRequest.model_validate_json(good.model_dump_json()) == good  # survives the HTTP hop


def test_digest_ignores_key_order_and_tells_filters_apart() -> None:
    assert filter_digest(None) == filter_digest({}) == ""
    assert filter_digest({"a": 1, "b": {"$in": ["x"]}}) == filter_digest({"b": {"$in": ["x"]}, "a": 1})
    assert filter_digest({"a": 1}) != filter_digest({"a": 2}) != ""


def test_filter_is_part_of_both_cache_partitions() -> None:
    base = CacheScope("t", "c", "e1", "p1", "ragd", GenerationParams())
    filtered = CacheScope("t", "c", "e1", "p1", "ragd", GenerationParams(), filter=filter_digest({"year": 2024}))
    other = CacheScope("t", "c", "e1", "p1", "ragd", GenerationParams(), filter=filter_digest({"year": 2023}))
    assert len({partition_key(base), partition_key(filtered), partition_key(other)}) == 3  # semantic partition
    assert len({exact_key(base, "q"), exact_key(filtered, "q"), exact_key(other, "q")}) == 3  # exact key
