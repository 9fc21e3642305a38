"""Retrieval evaluation (BEIR datasets, nDCG/recall, HNSW sweeps) and training of the embedder and reranker."""
