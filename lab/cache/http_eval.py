"""The pair sets through a running gateway's HTTP API: ``ragd eval cache --url URL``.

What a user meets, not what the offline decision says it would be: each pair's cached question is asked
through ``/v1/chat/completions`` (rails, retrieval, the answer, the cache store), then the incoming question,
and the response's ``x-ragd-cache`` header says whether the cache served it. Only pairs about a corpus take
part, unless a collection is named for the others: a pair's corpus is ingested into a collection of its own
over the REST API (the same documents ``ragd eval cache`` retrieves from offline), so the answers and the
evidence check are the gateway's own; pairs about no corpus are asked in the named collection as it stands.

Two views, as offline:

* **pairwise**: every pair in a cache partition of its own. A partition is keyed by every generation
  parameter, so each pair sends its own stop sequence (a string no answer holds); the cached question is
  the only entry its incoming question can meet.
* **crowded**: the cached questions of one split of a corpus in one partition (as offline, where a subset's
  own cached questions crowd it), each incoming question looked up among them all; **crowded, whole
  corpus**: every cached question about the corpus, of every split, in one partition, as in a cache that
  has answered all of them. The entry that served a question is the one whose answer the response
  repeats; a paraphrase served another question's answer, or a near miss served anything, is a false hit.

Incoming questions are sent with ``Cache-Control: no-store``: they read the cache and never write it, so
the order they are asked in changes nothing. A run's partitions carry a nonce of their own, so a rerun
never meets an earlier run's entries. The gateway decides with its own settings (threshold, guards,
evidence check); nothing is chosen here.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from lab.answers.runner import collection_name, ingest_over_rest
from lab.cache.evaluation import Pair, subsets_of
from lab.cache.grounding import load_corpus
from lab.guardrails.data import default_data_dir
from services.contracts import DocumentIn

__all__ = ["Asked", "HttpCacheEval", "evaluate_over_http", "score"]

_HITS = frozenset({"exact", "semantic"})


@dataclass(frozen=True, slots=True)
class Asked:
    """What came back for one question: the ``x-ragd-cache`` header and the answer."""

    cache: str
    content: str

    @property
    def hit(self) -> bool:
        return self.cache in _HITS


class HttpCacheEval:
    """One gateway: a collection per corpus, questions through the chat endpoint."""

    def __init__(self, url: str, *, api_key: str, timeout_s: float = 60.0, nonce: str | None = None) -> None:
        base = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=base, timeout=timeout_s,
                                       headers={"authorization": f"Bearer {api_key}"})
        self.nonce = nonce or secrets.token_hex(4)

    async def aclose(self) -> None:
        await self._http.aclose()

    @staticmethod
    def collection_for(corpus: str, doc_ids: Sequence[str]) -> str:
        return collection_name("evalcache", corpus, doc_ids)

    async def ingest(self, collection: str, docs: Sequence[DocumentIn], *, progress: bool) -> None:
        await ingest_over_rest(self._http, collection, docs, progress=progress, desc=f"ingest {collection}")

    async def ask(self, collection: str, question: str, partition: str, *, store: bool, read: bool = True) -> Asked:
        """``question`` in the cache partition named ``partition`` (a stop sequence no answer holds); ``read``
        False: answered past the cache."""
        body = {"model": f"ragd:{collection}", "messages": [{"role": "user", "content": question}],
                "temperature": 0.0, "stop": [f"<|ragd-eval-cache {self.nonce} {partition}|>"]}
        directives = [*([] if store else ["no-store"]), *([] if read else ["no-cache"])]
        headers = {"cache-control": ", ".join(directives)} if directives else {}
        for attempt in range(5):
            response = await self._http.post("/chat/completions", json=body, headers=headers)
            if response.status_code != 429:
                break
            await asyncio.sleep(float(response.headers.get("retry-after", 1 + attempt)))
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"] or ""
        return Asked(response.headers.get("x-ragd-cache", ""), content)


@dataclass
class _Run:
    """What the questions got: per pair id, alone in a partition (``pairwise``), among the cached questions of
    its split (``crowded``) and among those of its whole corpus (``crowded_corpus``)."""

    stored: dict[str, bool]  # pair id -> its cached question's answer was stored (asked again: an exact hit)
    pairwise: dict[str, Asked]
    crowded: dict[str, Asked]
    crowded_corpus: dict[str, Asked]
    answers: dict[tuple[str, str], str]  # (partition, cached question) -> its answer there
    fresh: dict[str, str]  # pair id -> its incoming question's own answer, asked past the cache (served ones only)


async def _crowd(client: HttpCacheEval, collection: str, partition: str, pairs: Sequence[Pair], run: _Run,
                 into: dict[str, Asked], *, progress: bool) -> None:
    for a in tqdm(sorted({p.a for p in pairs}), desc=partition, unit="q", disable=not progress):
        run.answers[(partition, a)] = (await client.ask(collection, a, partition, store=True)).content
    for p in pairs:
        into[p.id] = await client.ask(collection, p.b, partition, store=False)


async def _run_corpus(client: HttpCacheEval, collection: str, corpus: str, pairs: Sequence[Pair], run: _Run, *,
                      progress: bool) -> None:
    for i, p in enumerate(tqdm(pairs, desc=f"pairwise {corpus}", unit="pair", disable=not progress)):
        await client.ask(collection, p.a, f"pair {corpus} {i}", store=True)
        run.stored[p.id] = (await client.ask(collection, p.a, f"pair {corpus} {i}", store=False)).cache == "exact"
        run.pairwise[p.id] = await client.ask(collection, p.b, f"pair {corpus} {i}", store=False)
    for split in dict.fromkeys(p.split for p in pairs):
        await _crowd(client, collection, f"crowded {corpus} {split}", [p for p in pairs if p.split == split], run,
                     run.crowded, progress=progress)
    await _crowd(client, collection, f"crowded {corpus}", pairs, run, run.crowded_corpus, progress=progress)
    for p in pairs:  # what the served ones would have been answered without the cache
        if any(view[p.id].hit for view in (run.pairwise, run.crowded, run.crowded_corpus)):
            run.fresh[p.id] = (await client.ask(collection, p.b, "fresh", store=False, read=False)).content


def _differs(false: Sequence[str], served: dict[str, Asked], fresh: dict[str, str]) -> list[str]:
    """The false hits whose served answer is not the one the question gets past the cache: what the false hit
    changed for the user (a near miss served the entry of its own paraphrase gets the same answer)."""
    return [i for i in false if served[i].content != fresh.get(i)]


def _crowded(pairs: Sequence[Pair], served: dict[str, Asked], answers: dict[tuple[str, str], str],
             fresh: dict[str, str], partition: Callable[[Pair], str]) -> dict[str, Any]:
    """A hit is good when a paraphrase got its own cached question's answer; any other hit is false."""
    good: list[str] = []
    false: list[str] = []
    for p in pairs:
        if served[p.id].hit:
            own = served[p.id].content == answers.get((partition(p), p.a))
            (good if p.hit and own else false).append(p.id)
    positives = sum(p.hit for p in pairs)
    return {"hits": len(good), "hit_rate": round(len(good) / max(positives, 1), 4),
            "false_hit_rate": round(len(false) / max(len(pairs), 1), 4), "false_hits": false,
            "false_hits_answered_otherwise": _differs(false, served, fresh)}


def score(pairs: Sequence[Pair], run: _Run) -> dict[str, Any]:
    """Hit and false-hit rates of one subset: pairwise (false hits over its near misses) and crowded, among its
    split's cached questions as offline and among its whole corpus's (false hits over every lookup), each
with the false hits whose served answer differs from the question's own answer past the cache;
    ``unstored``: cached questions whose answer the gateway did not keep (a paraphrase of one cannot be
    served)."""
    positives = [p for p in pairs if p.hit]
    pair_hits = [p.id for p in positives if run.pairwise[p.id].hit]
    pair_false = [p.id for p in pairs if not p.hit and run.pairwise[p.id].hit]
    near = len(pairs) - len(positives)
    return {
        "paraphrases": len(positives),
        "near_misses": near,
        "unstored": sorted(p.id for p in pairs if not run.stored.get(p.id, False)),
        "pairwise": {"hits": len(pair_hits), "hit_rate": round(len(pair_hits) / max(len(positives), 1), 4),
                     "false_hit_rate": round(len(pair_false) / max(near, 1), 4), "false_hits": pair_false,
                     "false_hits_answered_otherwise": _differs(pair_false, run.pairwise, run.fresh),
                     "served": {p.id: run.pairwise[p.id].cache for p in pairs}},
        "crowded": _crowded(pairs, run.crowded, run.answers, run.fresh, lambda p: f"crowded {p.corpus} {p.split}"),
        "crowded_corpus": _crowded(pairs, run.crowded_corpus, run.answers, run.fresh, lambda p: f"crowded {p.corpus}"),
    }


async def evaluate_over_http(pairs: Sequence[Pair], url: str, *, api_key: str, data_dir: Path | None = None,
                             corpora: Mapping[str, Sequence[DocumentIn]] | None = None, collection: str | None = None,
                             progress: bool = True) -> dict[str, Any]:
    """The report: per subset (as offline: ``dev``, each other split, and each by language), the rates the
    gateway's own answers and headers give. A corpus's documents come from ``corpora`` where it names them,
    else from the shared data directory (``lab.cache.grounding.CORPORA``); pairs about no corpus are asked in
    ``collection`` as it stands (left out when None)."""
    asked = [p for p in pairs if p.corpus or collection]
    client = HttpCacheEval(url, api_key=api_key)
    run = _Run({}, {}, {}, {}, {}, {})
    try:
        for corpus in sorted({p.corpus for p in asked}):
            if corpus:
                docs = (corpora or {}).get(corpus) or load_corpus(corpus, data_dir or default_data_dir()).docs
                target = client.collection_for(corpus, [str(d.id) for d in docs])
                await client.ingest(target, docs, progress=progress)
            else:
                target = str(collection)
            await _run_corpus(client, target, corpus, [p for p in asked if p.corpus == corpus], run,
                              progress=progress)
    finally:
        await client.aclose()
    return {
        "url": url,
        "nonce": client.nonce,
        "collection_for_pairs_without_corpus": collection,
        "skipped_without_corpus": len(pairs) - len(asked),
        "subsets": {name: score(rows, run) for name, rows in subsets_of(asked).items()},
    }
