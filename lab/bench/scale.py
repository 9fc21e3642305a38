"""``ragd bench scale --sizes 10000,100000``: retrieval latency, memory, build and incremental-add time
against collection size, plus the ingest pipeline's overhead over the embedder's own time.

Per size, in a process of its own (so its memory is its own), one collection of that many chunks is written
to the store from generated text with hashed passage vectors (:mod:`lab.bench.scale_data` says exactly what
is synthetic and how the collection is written), loaded cold, then timed: hybrid retrieval (BM25 + dense +
fusion, no reranker, default settings) through ``LocalRetriever.retrieve``, BM25 alone, dense alone (query
embedding + Chroma HNSW), resident memory per chunk, and adding 100 documents to the collection (until the
next query is served). Ingest overhead is measured once on real documents with the real embedders. A bare
FastAPI endpoint is timed over loopback in the same run, interleaved with each size's queries, as the
machine's noise floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from lab.bench.common import summarize
from lab.bench.scale_data import (
    SYNTHETIC,
    HashedPassageEmbedder,
    Pools,
    SentenceTerms,
    generated,
    generated_docs,
    load_pools,
)

__all__ = ["bench_scale"]

TENANT, COLLECTION = "bench", "scale"
_BATCH = 1000  # documents per add_documents call while building
_ALWAYS_RUN = 100_000  # sizes up to this run whatever the projections say (the targets are set at 100k)


def bench_scale(opts: argparse.Namespace) -> dict[str, Any]:
    from lab.guardrails.data import default_data_dir

    opts.data = str(opts.data or default_data_dir())
    root = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="ragd-bench-scale-"))
    sizes: dict[str, Any] = {}
    result: dict[str, Any] = {
        "synthetic": SYNTHETIC, "queries_per_size": opts.queries, "sizes": sizes,
        "config": "--lean: one dense vector per chunk (dense_window 0) and no English side (english_dense off); "
                  "hybrid = BM25 + e5 + weighted z-score fusion" if opts.lean else
                  "the retriever's defaults (dense windows, English side for English queries), no reranker"}
    try:
        last: dict[str, Any] | None = None
        for n in opts.sizes:
            reason = _too_big(last, n, opts.max_build_s, opts.max_rss_gib)
            if reason:
                sizes[str(n)] = reason
                continue
            params = {"n": n, "data": opts.data, "data_dir": str(root / str(n)), "queries": opts.queries,
                      "embedder": opts.embedder, "bare": bool(opts.bare),
                      "lean": opts.lean, "store_writes": opts.store_writes}
            sizes[str(n)] = last = _in_child(params)
            shutil.rmtree(root / str(n), ignore_errors=True)
        try:
            result["ingest"] = asyncio.run(_ingest_overhead(opts, root / "ingest"))
        except Exception as exc:  # the sizes measured still stand
            result["ingest"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if not opts.workdir:
            shutil.rmtree(root, ignore_errors=True)
    return result


def _too_big(last: dict[str, Any] | None, n: int, max_build_s: float, max_rss_gib: float) -> dict[str, Any] | None:
    """Why size ``n`` is not run, projected from the last size measured (memory and build time grow linearly
    with chunks); None when it fits."""
    if last is None or n <= _ALWAYS_RUN:
        return None
    memory = last["rss_base_bytes"] + max(last["rss_bytes_per_chunk"], 0) * n
    build = last["build_s"] / last["chunks"] * n
    out = {"projected_rss_bytes": int(memory), "projected_build_s": round(build)}
    if memory > max_rss_gib * 1024**3:
        return {"skipped": f"projected process memory {memory / 1024**3:.1f} GiB is over --max-rss-gib "
                           f"{max_rss_gib:g} GiB", **out}
    if build > max_build_s:
        return {"skipped": f"projected build time {build / 3600:.1f} h is over --max-build-s "
                           f"{max_build_s / 3600:.1f} h on this machine", **out}
    return None


def _in_child(params: dict[str, Any]) -> dict[str, Any]:
    """One size measured in a fresh interpreter; its progress goes to stderr, its result is stdout's last line."""
    done = subprocess.run([sys.executable, "-m", "lab.bench.scale", json.dumps(params)], stdout=subprocess.PIPE,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {params['n']}-chunk run exited with {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _settings(data_dir: Path, opts: argparse.Namespace) -> Any:
    from retriever.settings import RetrieverSettings

    overrides: dict[str, Any] = {"data_dir": data_dir, "redis_url": None, "reranker_model": None, "top_k": 10}
    if getattr(opts, "lean", False):  # one vector per chunk, no English side: a third of the rows to write
        overrides.update(dense_window=0, english_dense=False)
    if opts.embedder:
        overrides["embedder_backend"] = opts.embedder
    return RetrieverSettings(**overrides)


async def _opened(settings: Any, *, hashed: bool) -> Any:
    from retriever.service import LocalRetriever
    from services.contracts import CollectionConfig
    from services.epochs import MemoryEpochStore

    retriever = LocalRetriever(settings, MemoryEpochStore())
    if hashed:  # passages hashed, queries through the real models
        retriever.embedder = retriever.search.embedder = HashedPassageEmbedder(retriever.embedder)
        if retriever.english is not None:
            retriever.english = retriever.search.english = HashedPassageEmbedder(retriever.english)
    await retriever.warm_up()
    await retriever.create_collection(TENANT, COLLECTION, CollectionConfig())
    return retriever


def _rss() -> int:
    """Resident anonymous memory (heap, Chroma's HNSW, arrays): file-backed pages such as mapped model
    weights are left out, since the kernel evicts and reloads them as the machine's memory pressure goes."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


async def _one_size(params: dict[str, Any]) -> dict[str, Any]:
    from services.contracts import RetrieveRequest

    n = int(params["n"])
    pools = load_pools(Path(params["data"]))
    opts = argparse.Namespace(embedder=params["embedder"], lean=params["lean"])
    retriever = await _opened(_settings(Path(params["data_dir"]), opts), hashed=True)
    request = RetrieveRequest(tenant=TENANT, collection=COLLECTION, query=pools.queries[0], top_k=10)
    await retriever.retrieve(request)  # models and Chroma loaded before the baseline
    rss_base = _rss()
    try:
        started = time.perf_counter()
        full = params.get("store_writes", "full") == "full"
        docs, records = await asyncio.to_thread(lambda: _write(retriever, pools, n, full=full))
        chunks = len(records)
        written = time.perf_counter() - started
        loaded = time.perf_counter()
        await _load(retriever, docs, records, full=full)
        del docs, records
        await retriever.retrieve(request)  # BM25 built on the first query
        build_s = time.perf_counter() - started
        load_s = time.perf_counter() - loaded
        rss = _rss()
        timings = await _time_queries(retriever, pools.queries[:int(params["queries"])], n, bare=params["bare"])
        add = await _add_hundred(retriever, pools, request)
    finally:
        await retriever.aclose()
    return {"chunks": chunks, "store_writes": params.get("store_writes", "full"), **timings,
            "rss_base_bytes": rss_base, "rss_bytes": rss,
            "rss_bytes_per_chunk": round((rss - rss_base) / max(chunks, 1)), "build_s": round(build_s, 2),
            "build_write_s": round(written, 2), "build_load_s": round(load_s, 2), **add,
            "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _write(retriever: Any, pools: Pools, n: int, *, full: bool) -> tuple[dict[str, Any], list[Any]]:
    """Documents of 3-7 sentences (one chunk each, mostly) written to the store in batches, without epochs or
    views: ``full``, as ingest writes them (chunk rows with text and terms, the English side, document
    records); else only what a search reads from the store (vectors and ``doc_id``), the text and terms
    staying in the returned records (for a view built in memory)."""
    from retriever.chunking import chunk_document
    from retriever.ingest import document_hash, embed_batched, embed_passages, english_passages, passage_text
    from retriever.store import ChunkRecord, DocRecord
    from retriever.text import analyze

    settings, store = retriever.settings, retriever.store
    terms_of = SentenceTerms()
    stream = generated(pools, n, prefix="d", seed=n)
    all_docs: dict[str, Any] = {}
    all_chunks: list[Any] = []
    with tqdm(total=n, desc=f"write {n} chunks", unit="chunk") as bar:
        while len(all_chunks) < n:
            batch = [item for _, item in zip(range(min(_BATCH, n - len(all_chunks))), stream, strict=False)]
            if not batch:
                break
            records: list[ChunkRecord] = []
            docs: list[tuple[Any, str]] = []
            for doc, sentences in batch:
                doc_id = str(doc.id)
                parts = chunk_document(doc_id, doc.text, size=settings.chunk_size, overlap=settings.chunk_overlap)
                mine = [ChunkRecord(id=c.id, doc_id=doc_id, ordinal=c.ordinal, text=c.text,
                                    terms=terms_of(sentences) if len(parts) == 1
                                    else tuple(analyze(passage_text("", c.text)))) for c in parts]
                records += mine
                docs.append((DocRecord(id=doc_id, title="", content_hash=document_hash(doc),
                                       chunk_ids=tuple(c.id for c in mine)), doc.text))
            titles = [""] * len(records)
            vectors = embed_passages(retriever.embedder, titles, records, settings.embed_batch_size,
                                     window=settings.dense_window, overlap=settings.dense_window_overlap)
            rows = records if full else [ChunkRecord(id=c.id, doc_id=c.doc_id, ordinal=c.ordinal, text="",
                                                     terms=()) for c in records]
            store.write_chunks(TENANT, COLLECTION, rows, vectors)
            if retriever.english is not None:
                en_chunks, en_texts = english_passages(titles, records)
                store.write_english(TENANT, COLLECTION, en_chunks,
                                    embed_batched(retriever.english, en_texts, settings.embed_batch_size),
                                    retriever.english.name)
            if full:
                store.commit_docs(TENANT, COLLECTION, docs)
            all_docs.update((record.id, record) for record, _ in docs)
            all_chunks += records
            bar.update(len(records))
    return all_docs, all_chunks


async def _load(retriever: Any, docs: dict[str, Any], chunks: list[Any], *, full: bool) -> None:
    """Make the written collection current: ``full``, by an epoch bump (the view reloads from the store, as
    after another replica's change); else by putting a view of ``docs``/``chunks`` at a new epoch in place
    (what ``LocalRetriever._load_view`` builds, without reading the records back)."""
    from retriever.view import CorpusView
    from services.epochs import partition_id

    epoch = await retriever.epochs.bump(TENANT, COLLECTION)
    if full:
        return
    settings = retriever.settings
    retriever._views[partition_id(TENANT, COLLECTION)] = CorpusView.from_records(
        epoch, docs, chunks, embedder=retriever.embedder.name,
        bm25_dir=retriever._bm25_dir(TENANT, COLLECTION),
        bm25_params=(settings.bm25_k1, settings.bm25_b),
        bm25_merge=(settings.bm25_max_segments, settings.bm25_merge_share))


async def _time_queries(retriever: Any, queries: list[str], n: int, *, bare: bool) -> dict[str, Any]:
    from retriever.text import analyze
    from services.contracts import RetrieveRequest

    view = await retriever.view(TENANT, COLLECTION)
    depth = retriever.settings.candidates
    hybrid: list[float] = []
    bm25: list[float] = []
    dense: list[float] = []
    floor: list[float] = []
    stages: dict[str, list[float]] = {}
    async with _BareEndpoint(bare) as call_bare:
        for query in tqdm(queries, desc=f"query {n} chunks", unit="q"):
            start = time.perf_counter()
            response = await retriever.retrieve(RetrieveRequest(tenant=TENANT, collection=COLLECTION, query=query,
                                                                top_k=10))
            hybrid.append(time.perf_counter() - start)
            for stage, ms in response.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
            start = time.perf_counter()
            view.bm25().search(analyze(query), depth)
            bm25.append(time.perf_counter() - start)
            start = time.perf_counter()
            vector = retriever.embedder.embed_queries([query])[0]
            retriever.store.query(TENANT, COLLECTION, vector, depth + 16)
            dense.append(time.perf_counter() - start)
            if call_bare is not None:
                floor.append(await call_bare())
    h, b, d = summarize(hybrid), summarize(bm25), summarize(dense)
    out: dict[str, Any] = {
        "hybrid_ms_p50": h["p50_ms"], "hybrid_ms_p95": h["p95_ms"], "bm25_ms_p50": b["p50_ms"],
        "bm25_ms_p95": b["p95_ms"], "dense_ms_p50": d["p50_ms"], "dense_ms_p95": d["p95_ms"],
        "hybrid_ms_p50_english": summarize(hybrid[0::2]).get("p50_ms"),
        "hybrid_ms_p50_korean": summarize(hybrid[1::2]).get("p50_ms"),
        "stage_p50_ms": {k: round(statistics.median(v), 3) for k, v in sorted(stages.items())}}
    if floor:
        out["bare_fastapi_ms_p50"] = summarize(floor)["p50_ms"]
        out["bare_fastapi_ms_p95"] = summarize(floor)["p95_ms"]
    return out


class _BareEndpoint:
    """A bare FastAPI endpoint in a uvicorn subprocess and a coroutine timing one POST to it; None when off."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self.server: Any = None
        self.client: httpx.AsyncClient | None = None
        self.workdir: Path | None = None

    async def __aenter__(self) -> Any:
        if not self.on:
            return None
        from lab.bench.common import BARE_BODY_ENV, free_port, serve

        self.workdir = Path(tempfile.mkdtemp(prefix="ragd-bare-"))
        body = self.workdir / "body.json"
        body.write_text(json.dumps({"object": "chat.completion", "choices": []}))
        port = free_port()
        self.server = await asyncio.to_thread(
            serve, "bare", ["-m", "uvicorn", "--factory", "lab.bench.common:bare_app", "--port", str(port),
                            "--log-level", "warning"],
            {**os.environ, BARE_BODY_ENV: str(body)}, self.workdir, port=port, ready_path="/health")
        self.client = httpx.AsyncClient(base_url=self.server.base_url, timeout=10)
        client = self.client

        async def call() -> float:
            start = time.perf_counter()
            (await client.post("/v1/chat/completions", json={"messages": []})).raise_for_status()
            return time.perf_counter() - start

        await call()
        return call

    async def __aexit__(self, *exc: object) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.server is not None:
            self.server.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


async def _add_hundred(retriever: Any, pools: Pools, request: Any) -> dict[str, Any]:
    """100 new documents into the built collection, until the next query is served; the BM25 base segment
    must be the one built before (an incremental add, not a rebuild)."""
    before = (await retriever.view(TENANT, COLLECTION)).bm25().segments
    docs = list(generated_docs(pools, 100, prefix="add", seed=1))
    started = time.perf_counter()
    report = await retriever.add_documents(TENANT, COLLECTION, docs)
    added = time.perf_counter() - started
    await retriever.retrieve(request)
    total = time.perf_counter() - started
    after = (await retriever.view(TENANT, COLLECTION)).bm25().segments
    return {"add100_s": round(total, 3), "add100_call_s": round(added, 3), "add100_chunks": report.chunks_added,
            "add100_bm25_base_kept": bool(before) and after[0] is before[0],
            "add100_bm25_segments": len(after),
            "add100_embedding": "hashed passage vectors (~0 s); the real embedders' time for 100 documents is "
                                "in ingest.embed_s_per_100_docs"}


async def _ingest_overhead(opts: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Real documents, real embedders: the embedders alone on exactly the texts ingest embeds, then the
    whole ingest of the same documents into a fresh collection (each twice, interleaved; medians)."""
    from retriever.ingest import embed_batched, embed_passages, english_passages, prepare

    docs = list(generated_docs(load_pools(Path(opts.data)), opts.ingest_docs, prefix="i", seed=11))
    settings = _settings(data_dir, opts)
    embeds: list[float] = []
    ingests: list[float] = []
    retriever = await _opened(settings, hashed=False)
    try:
        for attempt in tqdm(range(2), desc=f"ingest {len(docs)} docs, real embedders", unit="round"):
            prepared = [prepare(d, settings) for d in docs]
            chunks = [c for p in prepared for c in p.chunks]
            titles = [p.record.title for p in prepared for _ in p.chunks]
            start = time.perf_counter()
            embed_passages(retriever.embedder, titles, chunks, settings.embed_batch_size,
                           window=settings.dense_window, overlap=settings.dense_window_overlap)
            if retriever.english is not None:
                embed_batched(retriever.english, english_passages(titles, chunks)[1], settings.embed_batch_size)
            embeds.append(time.perf_counter() - start)
            name = f"{COLLECTION}-{attempt}"
            from services.contracts import CollectionConfig

            await retriever.create_collection(TENANT, name, CollectionConfig())
            start = time.perf_counter()
            await retriever.add_documents(TENANT, name, docs)
            ingests.append(time.perf_counter() - start)
    finally:
        await retriever.aclose()
    embed_s, ingest_s = statistics.median(embeds), statistics.median(ingests)
    return {"documents": len(docs), "chunks": len(chunks), "embedder": retriever.embedder.name,
            "english_embedder": retriever.english.name if retriever.english is not None else None,
            "embed_s": round(embed_s, 3), "ingest_s": round(ingest_s, 3),
            "overhead_pct": round(100 * (ingest_s - embed_s) / embed_s, 1),
            "embed_s_per_100_docs": round(embed_s * 100 / len(docs), 3),
            "rounds": {"embed_s": [round(x, 3) for x in embeds], "ingest_s": [round(x, 3) for x in ingests]}}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_one_size(json.loads(sys.argv[1])))), flush=True)
