"""Hybrid retrieval, ragd's default against LlamaIndex's BM25 + Chroma + ``QueryFusionRetriever``.

Both index the same documents (a subset of SciFact and of KorQuAD: the first ``queries`` judged queries,
their gold documents and the corpus's first other documents up to ``docs``) with the same embedder
(ragd's default dense embedder: LlamaIndex asks it over loopback HTTP, a thread of this process serving
it), and answer the same queries one at a time; nDCG@10 over documents (a document ranks by its best
chunk or node) and the p50 of each query's retrieval, query embedding included.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from embeddings.protocol import Embedder
from lab.bench.common import free_port
from lab.retriever.evaluation import COLLECTION, TENANT, Dataset, load_dataset, open_index, run_queries, summarize
from lab.retriever.metrics import mean_metrics, percentile
from retriever.settings import RetrieverSettings

__all__ = ["DATASETS", "compare_retrieval", "embed_app", "subset"]

PEER_SCRIPT = Path(__file__).with_name("side") / "llamaindex_hybrid.py"
TOP_K = 100  # chunks (nodes) each side retrieves; the ranking is over their documents
# dataset name -> (path under the shared data folder, split, language)
DATASETS = {"scifact": ("scifact", "test", "en"), "korquad": ("korquad_v1_dev/KorQuAD_v1.0_dev.json", "all", "ko")}


def subset(dataset: Dataset, queries: int, docs: int) -> Dataset:
    """The first ``queries`` judged queries, their gold documents, then other documents in corpus order up to
    ``docs`` in all (never fewer than the gold ones)."""
    kept = [q for q in dataset.queries if q in dataset.qrels][:queries]
    gold = {d for q in kept for d, rel in dataset.qrels[q].items() if rel > 0}
    chosen = [d for d in dataset.docs if d.id in gold]
    chosen += [d for d in dataset.docs if d.id not in gold][:max(0, docs - len(chosen))]
    order = {d.id: i for i, d in enumerate(dataset.docs)}
    chosen.sort(key=lambda d: order[d.id])
    return Dataset(f"{dataset.name}[{len(kept)}q/{len(chosen)}d]", chosen, {q: dataset.queries[q] for q in kept},
                   {q: dataset.qrels[q] for q in kept})


class EmbedBody(BaseModel):
    texts: list[str]
    kind: str = "query"


def embed_app(embedder: Embedder) -> FastAPI:
    """``POST /embed``: the embedder's query or passage vectors for ``texts``."""
    app = FastAPI()

    @app.post("/embed")
    def embed(body: EmbedBody) -> dict[str, list[list[float]]]:
        fn = embedder.embed_queries if body.kind == "query" else embedder.embed_passages
        return {"vectors": np.asarray(fn(body.texts), dtype=np.float32).tolist()}

    return app


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` on a loopback port in a thread of this process; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def _one(name: str, dataset: Dataset, language: str, python: Path, work: Path,
               cache_root: Path) -> dict[str, Any]:
    settings = RetrieverSettings()
    retriever = await open_index(dataset, settings, cache_root)
    try:
        run = await run_queries(retriever, dataset.queries, top_k=TOP_K)
        view = await retriever.view(TENANT, COLLECTION)
        ragd = summarize(dataset, run, settings, len(view.chunks))
        job = {"docs": [{"id": d.id, "title": d.title, "text": d.text} for d in dataset.docs],
               "queries": dataset.queries, "language": language, "top_k": TOP_K}
        with serving(embed_app(retriever.embedder)) as base:
            job["embed_url"] = base + "/embed"
            job_path, out_path = work / f"llamaindex-{name}-job.json", work / f"llamaindex-{name}-out.json"
            job_path.write_text(json.dumps(job, ensure_ascii=False))
            done = await asyncio.to_thread(subprocess.run, [str(python), str(PEER_SCRIPT), str(job_path),
                                                            str(out_path)], capture_output=True, text=True,
                                           timeout=7200)
    finally:
        await retriever.aclose()
    if done.returncode != 0:
        raise RuntimeError("LlamaIndex run failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])
    peer = json.loads(out_path.read_text())
    theirs = mean_metrics(peer["rankings"], dataset.qrels)
    return {"ragd_ndcg@10": round(ragd["ndcg@10"], 4), "llamaindex_ndcg@10": round(theirs["ndcg@10"], 4),
            "ragd_ms_p50": round(ragd["latency_ms_p50"], 2),
            "llamaindex_ms_p50": round(percentile(peer["latencies_ms"], 50), 2),
            "ragd_ms_p95": round(ragd["latency_ms_p95"], 2),
            "llamaindex_ms_p95": round(percentile(peer["latencies_ms"], 95), 2),
            "ragd_recall@100": round(ragd["recall@100"], 4), "llamaindex_recall@100": round(theirs["recall@100"], 4),
            "subset": dataset.name, "queries": len(dataset.queries), "documents": len(dataset.docs),
            "ragd_chunks": ragd["chunks"], "embedder": settings.embedder_backend,
            "llamaindex_build_s": round(peer["build_s"], 1), "llamaindex_versions": peer["versions"]}


def compare_retrieval(python: Path, work: Path, *, data_dir: Path, cache_root: Path, queries: int,
                      docs: int) -> dict[str, dict[str, Any]]:
    """The ``retrieval`` section of ``ragd bench peers``: one entry per dataset (LlamaIndex runs from
    ``python``'s virtualenv)."""
    results: dict[str, dict[str, Any]] = {}
    for name, (path, split, language) in DATASETS.items():
        dataset = subset(load_dataset(data_dir / path, split), queries, docs)
        results[name] = asyncio.run(_one(name, dataset, language, python, work, cache_root))
    return results
