"""The e5 passage runtimes side by side: vectors against the torch int8 path and passages/s.

``python -m lab.retriever.e5_passages --data ../shared/data --json bench/results/e5_passages.json``
embeds the first dense window of SciFact and KorQuAD documents (as ingestion cuts them: the documents judged
relevant to the first test queries, then distractors) with each runtime of the packaged multilingual-e5-small
and reports, per runtime, the cosine of its vectors to torch int8's (what indexes made by the ``e5-torch``
backend hold) and to the fp32 model's, its throughput, and dense-only nDCG@10 of those queries over those
passages (queries through the 4-bit graph, as the retriever embeds them).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.e5_onnx import E5OnnxEmbedder, GraphPrecision
from lab.bench.common import print_json
from lab.retriever.evaluation import Dataset, load_dataset
from lab.retriever.metrics import mean_metrics
from retriever.ingest import dense_windows, passage_text
from services.cpus import capped_threads

Embed = Callable[[list[str]], Any]


def sample(data: Path, n: int, *, window: int = 450, overlap: int = 100) -> tuple[list[str], list[str], Dataset]:
    """Up to ``n`` documents of a BEIR folder or KorQuAD (every document judged relevant to its first test
    queries, then others as distractors), each as its first dense window with the title in front (as
    ingestion cuts it), with their ids and the dataset cut to those documents and their queries."""
    dataset = load_dataset(data)
    by_id = {d.id: d for d in dataset.docs}
    chosen: list[str] = []
    queries: list[str] = []
    for qid in dataset.queries:
        relevant = [d for d in dataset.qrels.get(qid, {}) if d in by_id and d not in chosen]
        if not dataset.qrels.get(qid) or len(chosen) + len(relevant) > n // 2:
            continue
        chosen += relevant
        queries.append(qid)
    chosen += [d.id for d in dataset.docs if d.id and d.id not in set(chosen)][: n - len(chosen)]
    texts = [passage_text(by_id[d].title, dense_windows(by_id[d].text, window, overlap)[0]) for d in chosen]
    return texts, chosen, dataset.subset(queries)


def _rate(embed: Embed, texts: list[str], rounds: int) -> tuple[Any, float]:
    embed(texts[:4])
    best = 0.0
    vectors = None
    for _ in range(rounds):
        started = time.perf_counter()
        vectors = embed(texts)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return vectors, best


def compare(data: Path, n: int, models_dir: Path, rounds: int, *, torch: bool = True,
            full: bool = True) -> dict[str, Any]:
    """The runtimes' vectors, speed and dense-only nDCG@10 (queries through the 4-bit graph, as served)
    on ``n`` passages, half SciFact, half KorQuAD. ``full``: also torch fp32 and the 4-bit passage graph."""
    sets = {name: sample(data / folder, n // 2) for name, folder in (("scifact", "scifact"),
                                                                      ("korquad", "korquad_v1_dev"))}
    texts = [t for texts, _, _ in sets.values() for t in texts]
    threads = capped_threads(2)
    runtimes: dict[str, Embed] = {}
    if torch:
        from embeddings.e5_torch import E5TorchEmbedder

        for label, int8 in (("torch-int8", True), ("torch-fp32", False))[: 2 if full else 1]:
            model = E5TorchEmbedder(None, models_dir=models_dir, int8=int8, max_length=256)
            runtimes[label] = model.embed_passages
    precisions: tuple[GraphPrecision, ...] = ("int8", "fp32", "q4")
    for precision in precisions[: 3 if full else 2]:
        onnx = E5OnnxEmbedder(models_dir=models_dir, threads=threads, max_length=256, precision=precision)
        runtimes[f"onnx-{precision}"] = onnx.embed_passages
    vectors: dict[str, Any] = {}
    rates: dict[str, float] = {}
    for label, embed in runtimes.items():
        vectors[label], rates[label] = _rate(embed, texts, rounds)
    queries = E5OnnxEmbedder(models_dir=models_dir, threads=1, max_length=256)
    query_vectors = {name: queries.embed_queries(list(part.queries.values())) for name, (_, _, part) in sets.items()}
    out: dict[str, Any] = {"passages": len(texts), "max_length": 256, "threads": threads,
                           "queries": {name: len(part.queries) for name, (_, _, part) in sets.items()},
                           "machine": platform.processor() or platform.machine(), "runtimes": {}}
    for label in runtimes:
        row: dict[str, Any] = {"passages_per_s": round(rates[label], 2)}
        start = 0
        for name, (part_texts, ids, part) in sets.items():
            rows = vectors[label][start : start + len(part_texts)]
            start += len(part_texts)
            scores = query_vectors[name] @ rows.T
            rankings = {qid: [ids[i] for i in np.argsort(-scores[k])] for k, qid in enumerate(part.queries)}
            row[f"{name}_dense_ndcg@10"] = round(mean_metrics(rankings, part.qrels)["ndcg@10"], 4)
        for ref in ("torch-int8", "torch-fp32"):
            if ref in vectors and ref != label:
                cos = np.sum(vectors[label] * vectors[ref], axis=1)
                diff = np.abs(vectors[label] - vectors[ref]).max()
                row[f"vs_{ref}"] = {"cos_mean": round(float(cos.mean()), 5), "cos_min": round(float(cos.min()), 5),
                                    "max_abs": round(float(diff), 5)}
        out["runtimes"][label] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("-n", type=int, default=300, help="passages (half SciFact, half KorQuAD)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per runtime (the best is kept)")
    parser.add_argument("--models-dir", type=Path, default=Path(".ragd") / "models")
    parser.add_argument("--no-torch", action="store_true", help="only the ONNX runtimes")
    parser.add_argument("--short", action="store_true", help="only torch int8 and the ONNX int8 / fp32 graphs")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = compare(args.data, args.n, args.models_dir, args.rounds, torch=not args.no_torch,
                     full=not args.short)
    print_json(result, args.json)


if __name__ == "__main__":
    main()
