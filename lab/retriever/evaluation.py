"""Retrieval evaluation through the same ingestion and retrieval path as the API.

A dataset (BEIR folder or the original KorQuAD 1.0 JSON) is ingested with
``LocalRetriever.add_documents`` into a throwaway collection whose Chroma files and BM25 index live
under ``<cache_root>/<fingerprint>``; the fingerprint hashes the corpus, every setting that shapes
the index and the source of the modules that turn documents into chunks, terms and vectors, so an
unchanged corpus + settings reuses the index and anything else builds a fresh one. Every query then
goes through ``LocalRetriever.retrieve`` (top 100 chunks, ranked documents = first occurrence of
each document), one at a time, timed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from embeddings.e5_onnx import E5OnnxSettings
from embeddings.e5_torch import E5TorchSettings
from lab.retriever.metrics import mean_metrics, percentile
from retriever.hybrid import fuse
from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from retriever.text import analyze, detect_language
from services.contracts import CollectionConfig, DocumentIn, RetrieveRequest, ScoredChunk
from services.epochs import MemoryEpochStore
from services.errors import NotFoundError

__all__ = [
    "Dataset",
    "EvalRun",
    "ablation",
    "evaluate",
    "index_fingerprint",
    "load_beir",
    "load_dataset",
    "load_korquad",
    "open_index",
    "ranked_doc_ids",
    "run_queries",
    "side_rankings",
    "tune_fusion",
]

TENANT = "eval"
COLLECTION = "corpus"
TOP_K = 100
_INGEST_BATCH = 100
# Settings that change what is stored (chunks, terms, vectors); the others only change the search.
_INDEX_FIELDS = ("embedder_backend", "embedder_model", "passage_prefix", "chunk_size", "chunk_overlap",
                 "dense_window", "dense_window_overlap", "english_dense", "english_embedder_model")
# Bump when chunking, analysis or embedding code changes what an index holds for the same settings.
INDEX_VERSION = "4"


@dataclass(frozen=True)
class Dataset:
    """Documents, queries and graded judgements (query id -> document id -> relevance)."""

    name: str
    docs: list[DocumentIn]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def subset(self, query_ids: Sequence[str]) -> Dataset:
        """The same corpus with only ``query_ids`` (judgements follow)."""
        keep = [q for q in query_ids if q in self.queries]
        return Dataset(self.name, self.docs, {q: self.queries[q] for q in keep},
                       {q: self.qrels[q] for q in keep if q in self.qrels})


@dataclass
class EvalRun:
    """Rankings and per-query latency of one pass over a dataset's queries."""

    rankings: dict[str, list[str]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    degraded: int = 0


# ---------------------------------------------------------------- loaders


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """A BEIR qrels TSV (header ``query-id corpus-id score``)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or (i == 0 and not parts[2].lstrip("-").isdigit()):
                continue
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


def load_beir(directory: Path, split: str = "test") -> Dataset:
    """A BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

    Only ``_id``, ``title`` and ``text`` are read: a ``metadata`` field may hold the answers.
    """
    qrels = read_qrels(directory / "qrels" / f"{split}.tsv")
    docs = [DocumentIn(id=str(row["_id"]), title=str(row.get("title") or ""), text=str(row["text"]))
            for row in _read_jsonl(directory / "corpus.jsonl") if str(row.get("text") or "").strip()]
    queries = {str(row["_id"]): str(row["text"]) for row in _read_jsonl(directory / "queries.jsonl")
               if str(row["_id"]) in qrels}
    return Dataset(f"{directory.name}:{split}", docs, queries, {q: qrels[q] for q in queries})


def _in_tune_split(query_id: str) -> bool:
    return int(hashlib.sha1(query_id.encode()).hexdigest(), 16) % 5 == 0


def load_korquad(path: Path, split: str = "all") -> Dataset:
    """The original KorQuAD 1.0 JSON as retrieval: unique contexts are documents (article title as
    title), each question's gold is the context it was asked about.

    ``split``: ``all`` (also ``test``/``dev``), ``tune`` (a fixed ~20% of the questions, chosen by
    hash of their id, for choosing settings) or ``heldout`` (the other ~80%).
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    docs: dict[str, DocumentIn] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            doc_id = "kq-" + hashlib.sha256(context.encode("utf-8")).hexdigest()[:16]
            docs.setdefault(doc_id, DocumentIn(id=doc_id, title=article.get("title", ""), text=context))
            for qa in paragraph["qas"]:
                if split == "tune" and not _in_tune_split(qa["id"]):
                    continue
                if split == "heldout" and _in_tune_split(qa["id"]):
                    continue
                queries[qa["id"]] = qa["question"]
                qrels.setdefault(qa["id"], {})[doc_id] = 1
    name = path.stem if split in ("all", "test", "dev") else f"{path.stem}:{split}"
    return Dataset(name, list(docs.values()), queries, qrels)


def load_dataset(path: Path, split: str = "test") -> Dataset:
    """A BEIR folder, or a KorQuAD/SQuAD-style JSON file (or a folder holding exactly one)."""
    if path.is_file():
        return load_korquad(path, split)
    if (path / "corpus.jsonl").exists() and (path / "qrels" / f"{split}.tsv").exists():
        return load_beir(path, split)
    found = sorted(path.glob("*.json"))
    if len(found) == 1:
        return load_korquad(found[0], split)
    raise FileNotFoundError(f"{path}: neither a BEIR folder with qrels/{split}.tsv nor a KorQuAD JSON file")


# ---------------------------------------------------------------- index


def index_fingerprint(dataset: Dataset, settings: RetrieverSettings) -> str:
    """Hash of the corpus, the index-shaping settings and :data:`INDEX_VERSION`."""
    digest = hashlib.sha256(INDEX_VERSION.encode())
    for doc in dataset.docs:
        digest.update(json.dumps([doc.id, doc.title, doc.text], ensure_ascii=False).encode())
    for name in _INDEX_FIELDS:
        digest.update(f"{name}={getattr(settings, name)!r}".encode())
    if settings.embedder_backend == "e5-torch":
        options = E5TorchSettings()
        digest.update(f"int8={options.int8} max_length={options.max_length}".encode())
    if settings.embedder_backend == "e5-onnx":
        onnx = E5OnnxSettings()
        digest.update(f"precision={onnx.passage_precision} max_length={onnx.passage_max_length}".encode())
    return digest.hexdigest()[:20]


def eval_settings(settings: RetrieverSettings, dataset: Dataset, cache_root: Path) -> RetrieverSettings:
    """``settings`` with a data dir of its own under ``cache_root`` (persistent Chroma there)."""
    data_dir = cache_root / index_fingerprint(dataset, settings)
    update = {"data_dir": data_dir, "chroma_mode": "persistent",
              "max_documents_per_request": max(settings.max_documents_per_request, _INGEST_BATCH)}
    return settings.model_copy(update=update)


async def open_index(dataset: Dataset, settings: RetrieverSettings, cache_root: Path,
                     *, progress: bool = True) -> LocalRetriever:
    """A warm LocalRetriever holding ``dataset``'s corpus (ingested now, or reused from the cache)."""
    own = eval_settings(settings, dataset, cache_root)
    own.data_dir.mkdir(parents=True, exist_ok=True)
    retriever = LocalRetriever(own, MemoryEpochStore())
    await retriever.warm_up()
    try:
        await asyncio.to_thread(retriever.store.describe, TENANT, COLLECTION)
    except NotFoundError:
        await retriever.create_collection(TENANT, COLLECTION, CollectionConfig())
    view = await retriever.view(TENANT, COLLECTION)
    missing = [d for d in dataset.docs if d.id not in view.docs]
    bar = tqdm(total=len(dataset.docs), initial=len(dataset.docs) - len(missing), desc="ingest",
               unit="doc", disable=not progress)
    for start in range(0, len(missing), _INGEST_BATCH):
        batch = missing[start:start + _INGEST_BATCH]
        await retriever.add_documents(TENANT, COLLECTION, batch)
        bar.update(len(batch))
    bar.close()
    return retriever


# ---------------------------------------------------------------- queries


def ranked_doc_ids(chunks: Sequence[ScoredChunk]) -> list[str]:
    """Documents in the order of their best chunk."""
    return list(dict.fromkeys(chunk.doc_id for chunk in chunks))


async def run_queries(retriever: LocalRetriever, queries: Mapping[str, str], *, top_k: int = TOP_K,
                      progress: bool = True) -> EvalRun:
    """Every query through ``retriever.retrieve``, one at a time, timed end to end."""
    run = EvalRun()
    for text in list(queries.values())[:1]:  # load lazily built parts (BM25, HNSW) before timing
        await retriever.retrieve(RetrieveRequest(tenant=TENANT, collection=COLLECTION, query=text, top_k=top_k))
    for qid, text in tqdm(queries.items(), desc="queries", unit="q", disable=not progress):
        started = time.perf_counter()
        response = await retriever.retrieve(
            RetrieveRequest(tenant=TENANT, collection=COLLECTION, query=text, top_k=top_k))
        run.latencies_ms.append((time.perf_counter() - started) * 1000)
        run.rankings[qid] = ranked_doc_ids(response.chunks)
        run.degraded += bool(response.degraded)
        for name, ms in response.timings_ms.items():
            run.stage_ms.setdefault(name, []).append(ms)
    return run


def summarize(dataset: Dataset, run: EvalRun, settings: RetrieverSettings, chunks: int) -> dict[str, Any]:
    """The report: metrics, latency percentiles, sizes and the settings used."""
    report: dict[str, Any] = {"dataset": dataset.name, **mean_metrics(run.rankings, dataset.qrels)}
    report.update({
        "latency_ms_p50": percentile(run.latencies_ms, 50),
        "latency_ms_p95": percentile(run.latencies_ms, 95),
        "stage_ms_p50": {name: percentile(values, 50) for name, values in sorted(run.stage_ms.items())},
        "queries": len(run.rankings),
        "documents": len(dataset.docs),
        "chunks": chunks,
        "degraded_queries": run.degraded,
        "settings": settings.model_dump(mode="json", exclude={"data_dir", "host", "port", "redis_url"}),
    })
    return report


async def evaluate(dataset: Dataset, settings: RetrieverSettings, *, cache_root: Path,
                   limit: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Ingest (or reuse) the corpus, run the queries (the first ``limit``), and report."""
    retriever = await open_index(dataset, settings, cache_root, progress=progress)
    try:
        queries = dict(list(dataset.queries.items())[:limit]) if limit else dataset.queries
        run = await run_queries(retriever, queries, progress=progress)
        view = await retriever.view(TENANT, COLLECTION)
        scored = dataset.subset(list(queries))
        return summarize(scored, run, settings, len(view.chunks))
    finally:
        await retriever.aclose()


# ---------------------------------------------------------------- fusion tuning (train/dev queries only)

SideRankings = dict[str, dict[str, list[tuple[str, float]]]]


async def side_rankings(retriever: LocalRetriever, queries: Mapping[str, str], depth: int,
                        *, progress: bool = True) -> SideRankings:
    """Per query, the BM25, dense and (English queries) English candidate lists (chunk id, score) exactly as
    the search path makes them."""
    view = await retriever.view(TENANT, COLLECTION)
    bm25 = view.bm25()
    out: SideRankings = {}
    english = retriever.english
    n = min(len(view.chunks), depth + 16)
    for qid, text in tqdm(queries.items(), desc="candidates", unit="q", disable=not progress):
        # one query per call, as the search path does (int8 activation scales depend on the batch)
        vector = retriever.embedder.embed_queries([text])[0]
        dense = retriever.store.query(TENANT, COLLECTION, vector, n)
        out[qid] = {"bm25": bm25.search(analyze(text), depth),
                    "dense": [(c, sc) for c, sc in dense if c in view.chunks][:depth]}
        if english is not None and detect_language(text) == "en":
            hits = retriever.store.query_english(TENANT, COLLECTION, english.embed_queries([text])[0], n,
                                                 english.name)
            if hits:
                out[qid]["english"] = [(c, sc) for c, sc in hits if c in view.chunks][:depth]
    return out


def fused_metrics(sides: SideRankings, qrels: Mapping[str, Mapping[str, int]], doc_of: Mapping[str, str],
                  settings: RetrieverSettings) -> dict[str, float]:
    """Metrics of fusing the saved candidate lists with ``settings`` (fusion, weights, rrf_k, candidates)."""
    rankings: dict[str, list[str]] = {}
    n = settings.candidates
    for qid, lists in sides.items():
        fused = fuse({side: ranked[:n] for side, ranked in lists.items()}, settings)
        seen: dict[str, None] = {}
        for cid, _ in fused[:TOP_K]:
            seen.setdefault(doc_of[cid], None)
        rankings[qid] = list(seen)
    return mean_metrics(rankings, qrels)


def fusion_grid(base: RetrieverSettings) -> list[RetrieverSettings]:
    """The fusion settings tried by :func:`tune_fusion`."""
    grid: list[dict[str, Any]] = []
    for candidates in (20, 50, 100):
        grid += [{"fusion": "rrf", "rrf_k": k, "candidates": candidates} for k in (5, 20, 60)]
        for norm in ("minmax", "zscore"):
            for english in (0.0, 0.1, 0.2, 0.3):
                for w in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0):
                    bm25 = round(1.0 - english - w, 2)
                    if bm25 >= 0:
                        grid.append({"fusion": "weighted", "weighted_norm": norm, "weight_dense": w,
                                     "weight_bm25": bm25, "weight_english": english, "candidates": candidates})
    return [base.model_copy(update=u) for u in grid]


async def tune_fusion(datasets: Sequence[Dataset], settings: RetrieverSettings, *, cache_root: Path,
                      progress: bool = True) -> list[dict[str, Any]]:
    """Every fusion setting of :func:`fusion_grid` scored on each dataset's (train/dev) queries,
    best mean nDCG@10 first. Candidate lists are computed once per dataset and fused offline."""
    grid = fusion_grid(settings)
    per_dataset: list[list[dict[str, float]]] = []
    for dataset in datasets:
        retriever = await open_index(dataset, settings, cache_root, progress=progress)
        sides = await side_rankings(retriever, dataset.queries, 100, progress=progress)
        view = await retriever.view(TENANT, COLLECTION)
        doc_of = {cid: chunk.doc_id for cid, chunk in view.chunks.items()}
        per_dataset.append([fused_metrics(sides, dataset.qrels, doc_of, s) for s in grid])
        await retriever.aclose()
    rows = []
    for i, variant in enumerate(grid):
        scores = {d.name: per_dataset[j][i] for j, d in enumerate(datasets)}
        rows.append({"mean_ndcg@10": float(np.mean([m["ndcg@10"] for m in scores.values()])),
                     "settings": {k: getattr(variant, k) for k in _FUSION_FIELDS}, "datasets": scores})
    return sorted(rows, key=lambda r: -r["mean_ndcg@10"])


async def ablation(dataset: Dataset, settings: RetrieverSettings, *, cache_root: Path,
                   progress: bool = True) -> dict[str, dict[str, float]]:
    """BM25 alone, dense alone, RRF (k=60) and ``settings``' own fusion, from one set of candidates."""
    retriever = await open_index(dataset, settings, cache_root, progress=progress)
    try:
        sides = await side_rankings(retriever, dataset.queries, 100, progress=progress)
        view = await retriever.view(TENANT, COLLECTION)
    finally:
        await retriever.aclose()
    doc_of = {cid: chunk.doc_id for cid, chunk in view.chunks.items()}
    variants = {
        "bm25": settings.model_copy(update={"fusion": "weighted", "weight_bm25": 1.0, "weight_dense": 0.0,
                                            "weight_english": 0.0, "candidates": 100}),
        "dense": settings.model_copy(update={"fusion": "weighted", "weight_bm25": 0.0, "weight_dense": 1.0,
                                             "weight_english": 0.0, "candidates": 100}),
        "rrf_k60": settings.model_copy(update={"fusion": "rrf", "rrf_k": 60}),
        "configured": settings,
    }
    if any("english" in lists for lists in sides.values()):  # English queries over an English side
        variants["english"] = settings.model_copy(update={"fusion": "weighted", "weight_bm25": 0.0,
                                                          "weight_dense": 0.0, "weight_english": 1.0,
                                                          "candidates": 100})
        variants["bm25+dense"] = settings.model_copy(update={"weight_english": 0.0})
    return {name: fused_metrics(sides, dataset.qrels, doc_of, s) for name, s in variants.items()}


_FUSION_FIELDS = ("fusion", "rrf_k", "weight_bm25", "weight_dense", "weight_english", "weighted_norm", "candidates")
