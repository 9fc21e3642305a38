"""Semantic-cache precision, ragd against GPTCache, on ragd's cache pair set (``lab/cache/data``).

Each pair is (a: the cached question, b: the incoming one): b should hit when it is a paraphrase and
must not when it is a near miss (negation, another entity, another number). Both caches see each pair
alone (a fresh partition / a fresh cache per pair) and both embed with ragd's question embedder (e5
under ONNX Runtime), so only the decision differs: ragd's :class:`cache.AnswerCache` (its configured
threshold and guards; the evidence check needs a retrieval and is not part of this comparison), and
GPTCache's documented similar cache (``init_similar_cache``: sqlite + faiss, ``SearchDistanceEvaluation``,
``Config()``'s similarity threshold 0.8) with ragd's vectors in place of its default ONNX model, which it
downloads from a model hub.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cache import AnswerCache, CachedAnswer, CacheScope, CacheSettings
from cache.embedders import question_embedder
from lab.cache.eval_cli import DEFAULT_PAIRS
from lab.cache.evaluation import Pair, load_pairs

__all__ = ["compare_semantic", "ragd_hits", "rates"]

PEER_SCRIPT = Path(__file__).with_name("side") / "gptcache_pairs.py"


def rates(pairs: Sequence[Pair], hit_ids: set[str]) -> dict[str, float]:
    """Paraphrase hit rate (over the paraphrase pairs) and false-hit rate (over the near misses)."""
    positives = [p for p in pairs if p.hit]
    negatives = [p for p in pairs if not p.hit]
    return {"paraphrase_hit_rate": round(sum(p.id in hit_ids for p in positives) / max(len(positives), 1), 4),
            "false_hit_rate": round(sum(p.id in hit_ids for p in negatives) / max(len(negatives), 1), 4)}


async def ragd_hits(pairs: Sequence[Pair], settings: CacheSettings) -> set[str]:
    """The pairs whose b ragd's answer cache serves from a's entry (one partition per pair)."""
    cache = AnswerCache.create(settings, None)
    hits: set[str] = set()
    try:
        for p in pairs:
            scope = CacheScope("peers", "default", p.id, "policy", "ragd")
            await cache.store(scope, p.a, CachedAnswer(content=f"answer to {p.a}"))
            if (await cache.lookup(scope, p.b)).outcome == "semantic":
                hits.add(p.id)
    finally:
        await cache.close()
    return hits


def compare_semantic(python: Path, work: Path) -> dict[str, Any]:
    """The ``semantic_cache`` section of ``ragd bench peers`` (GPTCache runs in ``python``'s virtualenv)."""
    pairs = load_pairs(*DEFAULT_PAIRS)
    settings = CacheSettings()
    texts = sorted({p.a for p in pairs} | {p.b for p in pairs})
    vectors = np.asarray(question_embedder(settings).embed_queries(texts), dtype=np.float32)
    np.save(work / "question-vectors.npy", vectors)
    shutil.rmtree(work / "gptcache", ignore_errors=True)
    job = {"texts": texts, "vectors": str(work / "question-vectors.npy"), "work": str(work / "gptcache"),
           "pairs": [{"id": p.id, "a": p.a, "b": p.b} for p in pairs]}
    (work / "gptcache-job.json").write_text(json.dumps(job, ensure_ascii=False))
    done = subprocess.run([str(python), str(PEER_SCRIPT), str(work / "gptcache-job.json"),
                           str(work / "gptcache-out.json")], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError("GPTCache run failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])
    peer = json.loads((work / "gptcache-out.json").read_text())
    ragd = asyncio.run(ragd_hits(pairs, settings))
    ours, theirs = rates(pairs, ragd), rates(pairs, set(peer["hits"]))
    by_lang = {lang: {"ragd": rates(subset, ragd), "gptcache": rates(subset, set(peer["hits"]))}
               for lang in ("en", "ko") if (subset := [p for p in pairs if p.lang == lang])}
    return {"ragd_false_hit_rate": ours["false_hit_rate"], "peer_false_hit_rate": theirs["false_hit_rate"],
            "ragd_paraphrase_hit_rate": ours["paraphrase_hit_rate"],
            "peer_paraphrase_hit_rate": theirs["paraphrase_hit_rate"],
            "peer": f"gptcache {peer['version']} (init_similar_cache defaults, threshold {peer['threshold']})",
            "ragd_threshold": settings.semantic_threshold, "ragd_thresholds": dict(settings.semantic_thresholds),
            "embedder": settings.embedder,
            "pairs": {"paraphrase": sum(p.hit for p in pairs), "near_miss": sum(not p.hit for p in pairs)},
            "by_language": by_lang}
