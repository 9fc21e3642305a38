"""``python -m lab.cache.latency``: semantic and exact cache hits through the gateway's request path
(``Pipeline.prepare``: input rails, cache lookup and, with the evidence check, the question's own
retrieval), with the evidence check on and off, measured side by side in one process.

One retriever holds the demo corpus; three pipelines share it, the input rails and the question
embedder: the evidence check on, its retrieval started beside the input rails (the default); on, the
retrieval started after them (``PipelineOptions.retrieve_beside_rails`` off); and off
(``RAGD_CACHE_EVIDENCE=false``). Each cache holds the bench question's answer
with its evidence (its top-4 chunk ids, as the pipeline stores it). Every paraphrase the cache serves
(each asked once, so each is embedded afresh) and the bench question itself (an exact hit, which never
retrieves) are asked of every pipeline in rotation, so all see the same machine load. HTTP and
auth are not in it (an exact hit through the whole gateway adds ~0.3-0.5 ms; docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cache import AnswerCache, CachedAnswer, CacheScope, CacheSettings, question_embedder
from gateway.cli import demo_corpus_path
from gateway.components import cache_scope_factory
from gateway.pipeline import ChatTurn, Pipeline, PipelineOptions
from guardrails.engine import LocalGuard
from guardrails.policy import load_policy
from guardrails.settings import GuardrailsSettings
from lab.bench.common import summarize
from lab.bench.http import QUESTION, paraphrases, semantic_candidates
from retriever.loaders import load_path
from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from services.contracts import CollectionConfig, RetrieveRequest
from services.epochs import MemoryEpochStore

__all__ = ["main"]

TENANT, COLLECTION = "bench", "docs"


def _turn(question: str) -> ChatTurn:
    return ChatTurn(tenant=TENANT, collection=COLLECTION, model="ragd", question=question)


async def _measure(questions: list[str], work: Path) -> dict[str, Any]:
    epochs = MemoryEpochStore()
    retriever = LocalRetriever(RetrieverSettings(data_dir=work / "state", redis_url=None), epochs)
    await retriever.warm_up()
    await retriever.create_collection(TENANT, COLLECTION, CollectionConfig())
    await retriever.add_documents(TENANT, COLLECTION, load_path(demo_corpus_path()))
    settings = GuardrailsSettings()
    guard = LocalGuard(load_policy(settings.policy_path), settings)
    await guard.warm_up()
    embedder = question_embedder(CacheSettings())
    pipelines: dict[str, Pipeline] = {}
    for name, evidence, beside in (("evidence_on", True, True), ("evidence_after_rails", True, False),
                                   ("evidence_off", False, True)):
        cache = AnswerCache.create(CacheSettings(evidence=evidence), None, embedder)
        await cache.warm_up()
        pipeline = Pipeline(retriever=retriever, generator=None, guard=guard, epochs=epochs,  # type: ignore[arg-type]
                            cache=cache, scope_factory=cache_scope_factory(CacheScope),
                            options=PipelineOptions(retrieve_beside_rails=beside))
        scope = pipeline._cache_scope(_turn(QUESTION), await epochs.get(TENANT, COLLECTION))
        found = await retriever.retrieve(RetrieveRequest(tenant=TENANT, collection=COLLECTION, query=QUESTION,
                                                         top_k=_turn(QUESTION).top_k))
        await cache.store(scope, QUESTION, CachedAnswer(content="Reciprocal rank fusion sums 1/(k + rank) [1].",
                                                        retrieved_chunks=[c.chunk_id for c in found.chunks]))
        pipelines[name] = pipeline
    samples: dict[str, dict[str, list[float]]] = {n: {"semantic": [], "exact": []} for n in pipelines}
    outcomes: dict[str, dict[str, int]] = {n: {} for n in pipelines}
    plan = [(q, kind) for q in questions for kind in ("semantic", "exact")]
    for i, (question, kind) in enumerate(tqdm(plan, desc="alternating requests", unit="req")):
        names = list(pipelines)
        for name in names[i % len(names):] + names[: i % len(names)]:  # each goes first in turn
            start = time.perf_counter()
            prepared = await pipelines[name].prepare(_turn(question if kind == "semantic" else QUESTION))
            elapsed = time.perf_counter() - start
            key = f"{kind}:{prepared.cache}"
            outcomes[name][key] = outcomes[name].get(key, 0) + 1
            if prepared.cache == kind:
                samples[name][kind].append(elapsed)
    await retriever.aclose()
    return {name: {"semantic_hit": summarize(samples[name]["semantic"]), "exact_hit": summarize(samples[name]["exact"]),
                   "outcomes": outcomes[name]} for name in pipelines}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.cache.latency", description=__doc__)
    parser.add_argument("--questions", type=int, default=40, help="Paraphrases asked (each a semantic hit).")
    parser.add_argument("--json", type=Path, default=Path("bench/results/cache-evidence-latency.json"))
    args = parser.parse_args(argv)
    candidates = asyncio.run(semantic_candidates(paraphrases()))[: args.questions]
    with tempfile.TemporaryDirectory(prefix="ragd-evidence-bench-") as tmp:
        result = asyncio.run(_measure(candidates, Path(tmp)))
    report = {"question": QUESTION, "paraphrases": len(candidates), "path": "Pipeline.prepare (in process)", **result,
              "semantic_p50_ms": {n: r["semantic_hit"].get("p50_ms") for n, r in result.items()},
              "exact_p50_ms": {n: r["exact_hit"].get("p50_ms") for n, r in result.items()},
              "load_average_1m_at_end": _loadavg()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("semantic_p50_ms", "exact_p50_ms", "load_average_1m_at_end")}))
    return 0


def _loadavg() -> float:
    return round(float(Path("/proc/loadavg").read_text().split()[0]), 2)


if __name__ == "__main__":
    raise SystemExit(main())
