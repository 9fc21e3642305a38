"""``ragd eval rag``: answers measured end to end (correctness, citations, faithfulness, abstention, latency)."""
