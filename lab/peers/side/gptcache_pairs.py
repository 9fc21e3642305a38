"""GPTCache on ragd's cache pairs (runs in GPTCache's own virtualenv; no ragd import).

``python gptcache_pairs.py JOB.json OUT.json``: for each pair a fresh cache made by GPTCache's documented
``init_similar_cache`` (sqlite + faiss, SearchDistanceEvaluation, Config() defaults), whose embedding
reads the vectors ragd computed for the same texts; ``put(a)``, then ``get(b)``. Writes the ids of the
pairs whose b was served.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from gptcache import Cache, Config
from gptcache.adapter.api import get, init_similar_cache, put


class Precomputed:
    """GPTCache's embedding interface (``to_embeddings``, ``dimension``) over vectors given by text."""

    def __init__(self, texts: list[str], vectors: Any) -> None:
        self.index = {text: vectors[i] for i, text in enumerate(texts)}
        self.dimension = int(vectors.shape[1])

    def to_embeddings(self, data: str, **_: Any) -> Any:
        return self.index[data]


def main(job_path: str, out_path: str) -> int:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    embedding = Precomputed(job["texts"], np.load(job["vectors"]).astype("float32"))
    hits = []
    root = Path(job["work"])
    for i, pair in enumerate(job["pairs"]):
        # each cache keeps its folder until the process ends (GPTCache saves its faiss index at exit)
        cache = Cache()
        init_similar_cache(data_dir=str(root / str(i)), cache_obj=cache, embedding=embedding)
        put(pair["a"], f"answer to {pair['a']}", cache_obj=cache)
        if get(pair["b"], cache_obj=cache) is not None:
            hits.append(pair["id"])
    result = {"hits": hits, "version": version("gptcache"), "threshold": Config().similarity_threshold}
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
