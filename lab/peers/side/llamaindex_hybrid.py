"""LlamaIndex hybrid retrieval on a ragd evaluation subset (runs in LlamaIndex's own virtualenv; no ragd import).

``python llamaindex_hybrid.py JOB.json OUT.json``: the documents become LlamaIndex ``Document``s (title in the
metadata, as LlamaIndex embeds it), split by the default ``SentenceSplitter``; a ``VectorStoreIndex`` on a
Chroma collection (cosine) and a ``BM25Retriever`` over the same nodes, fused by ``QueryFusionRetriever`` in
``reciprocal_rerank`` mode (one query: no LLM query generation). Embeddings come from ragd's embedder over
loopback HTTP (``JOB["embed_url"]``), passages and queries alike. Each query is timed around
``retrieve``; the ranking is the documents in the order of their best node.
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import chromadb
import httpx
import Stemmer
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.retrievers.bm25 import BM25Retriever
from llama_index.vector_stores.chroma import ChromaVectorStore
from pydantic import PrivateAttr


class RagdEmbedding(BaseEmbedding):
    """ragd's embedder, asked over HTTP (``{"texts": [...], "kind": "query"|"passage"}``)."""

    url: str
    _client: httpx.Client = PrivateAttr(default_factory=lambda: httpx.Client(timeout=600))

    def _embed(self, texts: list[str], kind: str) -> list[list[float]]:
        response = self._client.post(self.url, json={"texts": texts, "kind": kind})
        response.raise_for_status()
        vectors: list[list[float]] = response.json()["vectors"]
        return vectors

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query], "query")[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text], "passage")[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts, "passage")


def build(job: dict[str, Any]) -> QueryFusionRetriever:
    embed = RagdEmbedding(url=job["embed_url"], embed_batch_size=32)
    documents = [Document(text=d["text"], doc_id=d["id"], metadata={"title": d["title"], "doc": d["id"]},
                          excluded_embed_metadata_keys=["doc"], excluded_llm_metadata_keys=["doc"])
                 for d in job["docs"]]
    nodes = SentenceSplitter()(documents)
    client = chromadb.EphemeralClient()
    collection = client.get_or_create_collection("peer", metadata={"hnsw:space": "cosine"})
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    index = VectorStoreIndex(nodes, storage_context=storage, embed_model=embed)
    top = job["top_k"]
    if job["language"] == "en":
        bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=top, stemmer=Stemmer.Stemmer("english"),
                                           language="english")
    else:  # no stemmer or stopword list for Korean: whitespace-and-word tokens
        bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=top, skip_stemming=True)
    return QueryFusionRetriever([index.as_retriever(similarity_top_k=top), bm25], llm=MockLLM(),
                                mode="reciprocal_rerank", similarity_top_k=top, num_queries=1)


def main(job_path: str, out_path: str) -> int:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    started = time.perf_counter()
    fusion = build(job)
    build_s = time.perf_counter() - started
    queries: dict[str, str] = job["queries"]
    fusion.retrieve(next(iter(queries.values())))  # warm up
    rankings: dict[str, list[str]] = {}
    latencies: list[float] = []
    for qid, text in queries.items():
        t0 = time.perf_counter()
        found = fusion.retrieve(text)
        latencies.append((time.perf_counter() - t0) * 1000)
        rankings[qid] = list(dict.fromkeys(n.node.metadata["doc"] for n in found))
    versions = {p: version(p) for p in ("llama-index-core", "llama-index-retrievers-bm25",
                                        "llama-index-vector-stores-chroma", "chromadb")}
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump({"rankings": rankings, "latencies_ms": latencies, "build_s": build_s, "versions": versions}, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
