"""``ragd eval cache --url``: pairs asked through a running gateway's HTTP API, scored by its ``x-ragd-cache``
header. A question that differs from the cached one only by case and punctuation is served (the same exact
key); a question about another document is answered fresh; each pair sits in a cache partition of its own."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lab.cache.evaluation import Pair
from lab.cache.http_eval import HttpCacheEval, evaluate_over_http
from services.contracts import DocumentIn
from tests.e2e.conftest import COVERED_QUESTION, Server

pytestmark = pytest.mark.e2e

DOCS = [
    DocumentIn(id="lighthouse", title="Aurora lighthouse",
               text="The Aurora lighthouse stands on the northern cape of Vell Island. It was built in 1871."),
    DocumentIn(id="bridge", title="Quillon bridge",
               text="The Quillon bridge crosses the river Aven with three stone arches. Construction began in 1654."),
]
PAIRS = [
    Pair("t-p", "en", "paraphrase", True, "dev", "When was the Aurora lighthouse built?",
         "when was the aurora lighthouse built", corpus="tiny"),
    Pair("t-n", "en", "entity", False, "dev", "When was the Aurora lighthouse built?",
         "How many stone arches does the Quillon bridge have?", corpus="tiny"),
    Pair("t-h", "en", "paraphrase", True, "holdout", "How many stone arches does the Quillon bridge have?",
         "how many stone arches does the quillon bridge have!", corpus="tiny"),
]


def test_pairs_through_the_gateway_are_scored_by_what_its_cache_header_says(server: Server) -> None:
    report = asyncio.run(evaluate_over_http(PAIRS, server.openai_base, api_key="none", corpora={"tiny": DOCS},
                                            progress=False))
    dev = report["subsets"]["dev"]
    assert dev["paraphrases"] == 1 and dev["near_misses"] == 1 and dev["unstored"] == []
    # the respelt question is served from the cache, the question about the bridge is not
    assert dev["pairwise"]["served"] == {"t-p": "exact", "t-n": "miss"}
    assert dev["pairwise"]["hit_rate"] == 1.0 and dev["pairwise"]["false_hit_rate"] == 0.0
    assert dev["crowded"]["hit_rate"] == 1.0 and dev["crowded"]["false_hits"] == []
    # among every cached question of the corpus the near miss meets the bridge question's entry, whose
    # answer it is served: any hit of a near miss counts as false, though here the answer is the one the
    # question gets past the cache
    assert dev["crowded_corpus"]["false_hits"] == ["t-n"]
    assert dev["crowded_corpus"]["false_hits_answered_otherwise"] == []
    assert report["subsets"]["holdout"]["pairwise"]["served"] == {"t-h": "exact"}
    assert report["skipped_without_corpus"] == 0
    # the corpus went into a collection of its own, through the REST API
    collection = HttpCacheEval.collection_for("tiny", [str(d.id) for d in DOCS])
    listed = httpx.get(f"{server.openai_base}/collections", timeout=30).json()
    assert collection in {c["name"] if isinstance(c, dict) else c for c in listed.get("data", listed)}


def test_pairs_about_no_corpus_are_asked_in_a_named_collection_or_left_out(server: Server) -> None:
    plain = [Pair("u-p", "en", "paraphrase", True, "independent", COVERED_QUESTION, COVERED_QUESTION.upper())]
    left_out = asyncio.run(evaluate_over_http(plain, server.openai_base, api_key="none", progress=False))
    assert left_out["skipped_without_corpus"] == 1 and left_out["subsets"] == {}
    # the session server's default collection holds the fixture corpus, which covers the question
    asked = asyncio.run(evaluate_over_http(plain, server.openai_base, api_key="none", collection="default",
                                           progress=False))
    row = asked["subsets"]["independent"]
    assert asked["skipped_without_corpus"] == 0 and row["unstored"] == []
    assert row["pairwise"]["served"] == {"u-p": "exact"} and row["crowded_corpus"]["hit_rate"] == 1.0
