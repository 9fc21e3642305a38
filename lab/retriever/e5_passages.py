"""The e5 passage runtimes side by side: vectors against the torch int8 path and passages/s.

``python -m lab.retriever.e5_passages --data ../shared/data --json bench/results/e5_passages.json``
embeds dense windows of SciFact and KorQuAD documents (as ingestion cuts them) with each runtime of the
packaged multilingual-e5-small and reports, per runtime, the cosine of its vectors to torch int8's (what
indexes made by the ``e5-torch`` backend hold) and to the fp32 model's, and its throughput.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.e5_onnx import E5OnnxEmbedder
from retriever.ingest import dense_windows, passage_text
from services.cpus import capped_threads

Embed = Callable[[list[str]], Any]


def windows(corpus: Path, n: int, *, window: int = 450, overlap: int = 100) -> list[str]:
    """The first ``n`` dense windows of a BEIR corpus, one per document at most (title in front)."""
    out: list[str] = []
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            first = dense_windows(doc["text"], window, overlap)[0]
            out.append(passage_text(doc.get("title", ""), first))
            if len(out) == n:
                break
    return out


def _rate(embed: Embed, texts: list[str], rounds: int) -> tuple[Any, float]:
    embed(texts[:4])
    best = 0.0
    vectors = None
    for _ in range(rounds):
        started = time.perf_counter()
        vectors = embed(texts)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return vectors, best


def compare(data: Path, n: int, models_dir: Path, rounds: int, *, torch: bool = True) -> dict[str, Any]:
    texts = windows(data / "scifact" / "corpus.jsonl", n // 2) + windows(data / "korquad_v1_dev" / "corpus.jsonl",
                                                                         n - n // 2)
    threads = capped_threads(2)
    runtimes: dict[str, Embed] = {}
    if torch:
        from embeddings.e5_torch import E5TorchEmbedder

        for label, int8 in (("torch-int8", True), ("torch-fp32", False)):
            model = E5TorchEmbedder(None, models_dir=models_dir, int8=int8, max_length=256)
            runtimes[label] = model.embed_passages
    for precision in ("int8", "fp32", "q4"):
        onnx = E5OnnxEmbedder(models_dir=models_dir, threads=threads, max_length=256, precision=precision)
        runtimes[f"onnx-{precision}"] = onnx.embed_passages
    vectors: dict[str, Any] = {}
    rates: dict[str, float] = {}
    for label, embed in runtimes.items():
        vectors[label], rates[label] = _rate(embed, texts, rounds)
    out: dict[str, Any] = {"passages": len(texts), "max_length": 256, "threads": threads,
                           "machine": platform.processor() or platform.machine(), "runtimes": {}}
    for label in runtimes:
        row: dict[str, Any] = {"passages_per_s": round(rates[label], 2)}
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
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = compare(args.data, args.n, args.models_dir, args.rounds, torch=not args.no_torch)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
