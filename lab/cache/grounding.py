"""The retrieval evidence of questions about a corpus: each question's top-k chunk ids, from ragd's
own retriever over the corpus the pairs name, ingested once and kept on disk with the results.

A pair's ``corpus`` names a corpus in :data:`CORPORA` (read from the shared data directory, never
copied into the project). The index is the retriever evaluation's (``.ragd/eval-cache/<fingerprint>``,
shared with ``ragd eval retrieval``); the top-k lists are kept beside it in a JSON file keyed by the
index fingerprint and ``top_k``, so a rerun retrieves only questions it has not seen.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from cache.entries import CachedAnswer
from cache.evidence import EvidenceCheck
from lab.cache.evaluation import Agrees, Pair
from lab.retriever.evaluation import COLLECTION, TENANT, Dataset, eval_settings, load_dataset, open_index
from retriever.settings import RetrieverSettings
from services.contracts import RetrieveRequest

__all__ = ["CORPORA", "DEFAULT_CACHE_ROOT", "Retrieved", "agreement_check", "load_corpus", "retrieve_pairs"]

CORPORA: dict[str, tuple[str, int | None]] = {
    # name: (path under the data directory, articles kept: the first N, None for all)
    "xquad_en": ("xquad_en", None),  # 240 paragraphs of 48 Wikipedia articles
    "korquad_v1_dev": ("korquad_v1_dev/KorQuAD_v1.0_dev.json", 40),  # 192 passages: bounds the ingest here
}
DEFAULT_CACHE_ROOT = Path(".ragd") / "eval-cache"
TOP_K = 4  # the gateway's default sources per question (RAGD_GATEWAY_TOP_K)

Retrieved = dict[str, dict[str, list[str]]]
"""corpus -> question -> chunk ids of its top-k, best first."""


def retrieve_pairs(
    pairs: Sequence[Pair],
    data_dir: Path,
    *,
    cache_root: Path = DEFAULT_CACHE_ROOT,
    top_k: int = TOP_K,
    settings: RetrieverSettings | None = None,
) -> Retrieved:
    """The top-k chunk ids of every question of the pairs about a corpus (both ``a`` and ``b``)."""
    wanted: dict[str, set[str]] = {}
    for p in pairs:
        if p.corpus:
            if p.corpus not in CORPORA:
                raise ValueError(f"pair {p.id}: unknown corpus {p.corpus!r} (known: {', '.join(sorted(CORPORA))})")
            wanted.setdefault(p.corpus, set()).update((p.a, p.b))
    base = settings or RetrieverSettings(redis_url=None)
    return {
        corpus: asyncio.run(_retrieve(load_corpus(corpus, data_dir), sorted(questions), base, cache_root, top_k))
        for corpus, questions in wanted.items()
    }


def load_corpus(name: str, data_dir: Path) -> Dataset:
    """The corpus ``name`` of :data:`CORPORA` (its first N articles where it says so)."""
    path, articles = CORPORA[name]
    dataset = load_dataset(data_dir / path)
    if articles is None:
        return dataset
    titles = list(dict.fromkeys(doc.title for doc in dataset.docs))[:articles]
    keep = set(titles)
    return Dataset(f"{dataset.name}:first{articles}", [d for d in dataset.docs if d.title in keep], {}, {})


async def _retrieve(dataset: Dataset, questions: Sequence[str], settings: RetrieverSettings, cache_root: Path,
                    top_k: int) -> dict[str, list[str]]:
    own = eval_settings(settings, dataset, cache_root)
    memo_path = own.data_dir.parent / f"{own.data_dir.name}.cache-evidence.top{top_k}.json"
    memo: dict[str, list[str]] = json.loads(memo_path.read_text(encoding="utf-8")) if memo_path.exists() else {}
    missing = [q for q in questions if q not in memo]
    if missing:
        retriever = await open_index(dataset, settings, cache_root)
        try:
            for question in tqdm(missing, desc=f"retrieve ({dataset.name})", unit="q"):
                response = await retriever.retrieve(
                    RetrieveRequest(tenant=TENANT, collection=COLLECTION, query=question, top_k=top_k))
                memo[question] = [c.chunk_id for c in response.chunks]
        finally:
            await retriever.aclose()
        memo_path.write_text(json.dumps(memo, ensure_ascii=False, indent=0), encoding="utf-8")
    return {q: memo[q] for q in questions}


def agreement_check(retrieved: Mapping[str, Mapping[str, Sequence[str]]], check: EvidenceCheck) -> Agrees:
    """``agrees(question, candidate, corpus)`` as the cache decides it: the entry cached for
    ``candidate`` carries its own top-k (and names no particular source, so it stands on its
    best-ranked chunk), and ``question``'s top-k must hold enough of it."""
    entries: dict[tuple[str, str], CachedAnswer] = {}

    def agrees(question: str, candidate: str, corpus: str) -> bool:
        entry = entries.get((corpus, candidate))
        if entry is None:
            entry = CachedAnswer(content="-", retrieved_chunks=list(retrieved[corpus][candidate]))
            entries[(corpus, candidate)] = entry
        return check.reason(entry, retrieved[corpus][question]) is None

    return agrees
