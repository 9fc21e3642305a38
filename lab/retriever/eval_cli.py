"""``ragd eval retrieval`` and ``ragd eval hnsw``.

Settings come from the environment (``RAGD_RETRIEVER_*``) with ``--set name=value`` on top, so a
run with no flags measures exactly what the service would do with the same environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from lab.retriever.evaluation import (
    COLLECTION,
    TENANT,
    Dataset,
    ablation,
    evaluate,
    load_dataset,
    open_index,
    tune_fusion,
)
from lab.retriever.metrics import percentile
from retriever.settings import RetrieverSettings
from services.contracts import CollectionConfig
from services.epochs import partition_id

__all__ = ["add_hnsw", "add_retrieval", "measure_hnsw", "plot_against_baselines", "plot_hnsw", "settings_from_args"]

_DEFAULT_CACHE = Path(".ragd") / "eval-cache"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, default=None,
                        help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/) or a KorQuAD 1.0 JSON file")
    parser.add_argument("--split", default="test", help="qrels split of a BEIR folder (default: test)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here as JSON")
    parser.add_argument("--cache-dir", type=Path, default=_DEFAULT_CACHE,
                        help="where ingested indexes are kept for reuse (default: .ragd/eval-cache)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override one retriever setting, e.g. --set fusion=weighted (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def settings_from_args(pairs: list[str]) -> RetrieverSettings:
    """Environment settings with ``NAME=VALUE`` overrides (validated by pydantic)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in RetrieverSettings.model_fields:
            raise SystemExit(f"ragd eval: --set wants NAME=VALUE with a retriever setting name, got {pair!r}")
        overrides[name] = None if value.lower() in ("none", "null", "") else value
    return RetrieverSettings(**overrides)


def _write(report: dict[str, Any], path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- retrieval


def add_retrieval(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--limit", type=int, default=None, help="only the first N queries")
    parser.add_argument("--tune", type=Path, action="append", default=[], metavar="DIR_OR_FILE[:SPLIT]",
                        help="instead of evaluating, score every fusion setting on these datasets' queries "
                             "(train/dev splits only, e.g. scifact:train, KorQuAD.json:tune; repeatable)")
    parser.add_argument("--plot", type=Path, default=None,
                        help="bar chart (PNG) of this run and its ablation next to published baselines")
    parser.add_argument("--plot-with", type=Path, action="append", default=[], metavar="REPORT_JSON",
                        help="also draw these saved reports of the same dataset as bars, e.g. runs with a "
                             "reranker (repeatable)")
    parser.add_argument("--ablate", action="store_true",
                        help="also report BM25 alone, dense alone and RRF k=60 on the same candidates")
    parser.set_defaults(run=_run_retrieval)


def _run_retrieval(args: argparse.Namespace) -> int:
    if args.tune:
        return _run_tune(args)
    if args.dataset is None:
        raise SystemExit("ragd eval retrieval: --dataset is required")
    dataset = load_dataset(args.dataset, args.split)
    settings = settings_from_args(args.set)
    report = asyncio.run(evaluate(dataset, settings, cache_root=args.cache_dir, limit=args.limit,
                                  progress=not args.no_progress))
    print(f"{report['dataset']}: {report['queries']} queries over {report['documents']} documents "
          f"({report['chunks']} chunks)")
    print(f"  nDCG@10 {report['ndcg@10']:.4f}   Recall@100 {report['recall@100']:.4f}   "
          f"MRR@10 {report['mrr@10']:.4f}")
    print(f"  latency p50 {report['latency_ms_p50']:.1f} ms   p95 {report['latency_ms_p95']:.1f} ms   "
          f"(embedder {settings.embedder_backend}, fusion {settings.fusion}, reranker {settings.reranker_model})")
    if args.ablate:
        report["ablation"] = asyncio.run(ablation(dataset, settings, cache_root=args.cache_dir,
                                                  progress=not args.no_progress))
        for name, metrics in report["ablation"].items():
            print(f"  {name:>10}: nDCG@10 {metrics['ndcg@10']:.4f}  Recall@100 {metrics['recall@100']:.4f}")
    if args.plot is not None:
        saved = [json.loads(path.read_text(encoding="utf-8")) for path in args.plot_with]
        plot_against_baselines(report, args.plot, saved)
    _write(report, args.json)
    return 0


# Published nDCG@10 of single models (BEIR paper, MTEB), for the plot.
PUBLISHED: dict[str, dict[str, float]] = {
    "scifact": {"BM25 (BEIR)": 0.665, "BM25 (bm25s)": 0.687, "BM25 + ms-marco CE": 0.682,
                "all-MiniLM-L6-v2": 0.645, "multilingual-e5-small": 0.676, "bge-small-en-v1.5": 0.713,
                "bge-large-en-v1.5": 0.722},
    "KorQuAD_v1.0_dev": {"BM25 (MTEB)": 0.839, "bge-m3": 0.904},
}


def _saved_label(report: Mapping[str, Any]) -> str:
    settings = report.get("settings", {})
    latency = f"p50 {report['latency_ms_p50']:.0f} ms"
    if settings.get("reranker_model"):
        return f"ragd + reranker, top {settings.get('rerank_top_n')} ({latency})"
    if settings.get("query_embedder_model"):
        return f"ragd + trained query side ({latency})"
    return f"ragd, saved run ({latency})"


def plot_against_baselines(report: dict[str, Any], path: Path, saved: Sequence[Mapping[str, Any]] = ()) -> None:
    """Horizontal bars: published baselines (grey), this run with its ablation (blue) and ``saved`` reports
    of the same dataset (green; e.g. runs with a reranker)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = str(report["dataset"]).split(":")[0]
    bars = [(label, value, "tab:gray") for label, value in PUBLISHED.get(name, {}).items()]
    for label, metrics in report.get("ablation", {}).items():
        if label != "configured":
            bars.append((f"ragd {label} (same candidates)", metrics["ndcg@10"], "tab:cyan"))
    bars.append((f"ragd default (API path, p50 {report['latency_ms_p50']:.0f} ms)", report["ndcg@10"], "tab:blue"))
    for other in saved:
        if str(other.get("dataset")) != str(report["dataset"]):
            raise SystemExit(f"--plot-with: a report of {other.get('dataset')}, not of {report['dataset']}")
        bars.append((_saved_label(other), float(other["ndcg@10"]), "tab:green"))
    fig, ax = plt.subplots(figsize=(7.0, 0.35 * len(bars) + 1.2))
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    for i, (_, value, _) in enumerate(bars):
        ax.text(value + 0.003, i, f"{value:.3f}", va="center", fontsize=8)
    low = min(b[1] for b in bars)
    ax.set_xlim(max(0.0, low - 0.1), min(1.0, max(b[1] for b in bars) + 0.05))
    ax.set_xlabel("nDCG@10")
    ax.set_title(f"{report['dataset']}: {report['queries']} queries")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _run_tune(args: argparse.Namespace) -> int:
    datasets = []
    for spec in args.tune:
        path, _, split = str(spec).rpartition(":") if ":" in str(spec) else (str(spec), "", "train")
        datasets.append(load_dataset(Path(path), split))
    rows = asyncio.run(tune_fusion(datasets, settings_from_args(args.set), cache_root=args.cache_dir,
                                   progress=not args.no_progress))
    for row in rows[:15]:
        per = "  ".join(f"{name} {m['ndcg@10']:.4f}" for name, m in row["datasets"].items())
        print(f"  mean nDCG@10 {row['mean_ndcg@10']:.4f}  {per}  {row['settings']}")
    _write({"ranked": rows}, args.json)
    return 0


# ---------------------------------------------------------------- hnsw


def add_hnsw(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--ef", default="10,20,40,80,160,320", help="comma-separated ef_search values")
    parser.add_argument("--queries", type=int, default=300, help="queries to measure (default 300)")
    parser.add_argument("--plot", type=Path, default=None, help="write a recall/latency plot (PNG)")
    parser.set_defaults(run=_run_hnsw)


def _run_hnsw(args: argparse.Namespace) -> int:
    if args.dataset is None:
        raise SystemExit("ragd eval hnsw: --dataset is required")
    dataset = load_dataset(args.dataset, args.split)
    settings = settings_from_args(args.set)
    efs = [int(v) for v in args.ef.split(",") if v.strip()]
    report = measure_hnsw(dataset, settings, cache_root=args.cache_dir, ef_values=efs,
                          n_queries=args.queries, progress=not args.no_progress)
    for row in report["points"]:
        print(f"  ef_search {row['ef_search']:>4}  recall@10 {row['recall@10']:.4f}  "
              f"p50 {row['latency_ms_p50']:.2f} ms  (exact {report['exact_latency_ms_p50']:.2f} ms)")
    if args.plot is not None:
        plot_hnsw(report, args.plot)
    _write(report, args.json)
    return 0


# ---------------------------------------------------------------- HNSW vs exact search


def _chunk_collection_name() -> str:
    return f"ragd-{partition_id(TENANT, COLLECTION)}-c"  # the naming documented in retriever/store.py


def _hnsw_point(chroma_dir: Path, ef: int, queries: npt.NDArray[np.float32],
                exact: list[set[str]]) -> dict[str, float]:
    """Recall@10 and latency at one ef_search, on a freshly loaded client (Chroma applies ef on load)."""
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient
    from chromadb.config import Settings as ChromaSettings

    SharedSystemClient.clear_system_cache()
    client = chromadb.PersistentClient(path=str(chroma_dir), settings=ChromaSettings(anonymized_telemetry=False))
    client.get_collection(_chunk_collection_name()).modify(configuration={"hnsw": {"ef_search": ef}})
    SharedSystemClient.clear_system_cache()
    client = chromadb.PersistentClient(path=str(chroma_dir), settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.get_collection(_chunk_collection_name())
    collection.query(query_embeddings=[queries[0].tolist()], n_results=10)  # load the index
    hits, latencies = 0, []
    for vector, truth in zip(queries, exact, strict=True):
        started = time.perf_counter()
        found = collection.query(query_embeddings=[vector.tolist()], n_results=10, include=[])
        latencies.append((time.perf_counter() - started) * 1000)
        hits += len(truth.intersection(found["ids"][0]))
    return {"ef_search": ef, "recall@10": hits / (10 * len(exact)),
            "latency_ms_p50": percentile(latencies, 50), "latency_ms_p95": percentile(latencies, 95)}


def measure_hnsw(dataset: Dataset, settings: RetrieverSettings, *, cache_root: Path, ef_values: Sequence[int],
                 n_queries: int = 300, progress: bool = True) -> dict[str, Any]:
    """Recall@10 of Chroma's HNSW against exact (numpy) search, and query latency, per ef_search.

    Works on a copy of the cached index so the evaluation index keeps its own ef_search.
    """
    retriever = asyncio.run(open_index(dataset, settings, cache_root, progress=progress))
    ids, matrix = retriever.store.dense_rows(TENANT, COLLECTION)
    texts = list(dataset.queries.values())[:n_queries]
    queries = retriever.embedder.embed_queries(texts)
    exact: list[set[str]] = []
    exact_ms: list[float] = []
    for vector in queries:
        started = time.perf_counter()
        top = np.argpartition(-(matrix @ vector), 10)[:10]
        exact_ms.append((time.perf_counter() - started) * 1000)
        exact.append({ids[i] for i in top})
    source = retriever.settings.data_dir / "chroma"
    with tempfile.TemporaryDirectory(prefix="ragd-hnsw-") as tmp:
        copy = Path(tmp) / "chroma"
        shutil.copytree(source, copy)
        points = [_hnsw_point(copy, ef, queries, exact)
                  for ef in tqdm(ef_values, desc="ef_search", disable=not progress)]
    return {"dataset": dataset.name, "vectors": len(ids), "queries": len(texts),
            "embedder": retriever.embedder.name, "config": CollectionConfig().model_dump(),
            "exact_latency_ms_p50": percentile(exact_ms, 50), "points": points}


def plot_hnsw(report: Mapping[str, Any], path: Path) -> None:
    """Recall@10 and p50 latency against ef_search (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = report["points"]
    efs = [p["ef_search"] for p in points]
    fig, left = plt.subplots(figsize=(6.4, 4.0))
    left.plot(efs, [p["recall@10"] for p in points], "o-", color="tab:blue", label="recall@10 vs exact")
    left.set_xscale("log", base=2)
    left.set_xlabel("ef_search")
    left.set_ylabel("recall@10 vs exact search", color="tab:blue")
    right = left.twinx()
    right.plot(efs, [p["latency_ms_p50"] for p in points], "s--", color="tab:red", label="p50 latency")
    right.axhline(report["exact_latency_ms_p50"], color="tab:gray", linestyle=":", label="exact (numpy) p50")
    right.set_ylabel("query latency p50, ms", color="tab:red")
    left.set_title(f"Chroma HNSW on {report['dataset']} ({report['vectors']} vectors)")
    fig.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
