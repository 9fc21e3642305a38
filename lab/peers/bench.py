"""``ragd bench peers [--json OUT]``: each comparison in one run on this machine, each peer from its own
virtualenv; a comparison whose peer cannot be installed or run is named in ``skipped`` with the reason."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from lab.bench.common import machine_info
from lab.guardrails.data import default_data_dir
from lab.peers.venvs import VenvError, ensure_venv

__all__ = ["KEYS", "markdown_table", "redis_vector_search", "run_peers"]

REPO = Path(__file__).resolve().parents[2]
# the keys of each section (null when its peer was skipped)
KEYS = {"cache": ("ragd_rps", "litellm_rps", "ragd_ms_p50", "litellm_ms_p50"),
        "semantic_cache": ("ragd_false_hit_rate", "peer_false_hit_rate", "ragd_paraphrase_hit_rate",
                           "peer_paraphrase_hit_rate")}
RETRIEVAL_KEYS = ("ragd_ndcg@10", "llamaindex_ndcg@10", "ragd_ms_p50", "llamaindex_ms_p50")


def redis_vector_search(url: str) -> str | None:
    """None when the Redis at ``url`` has vector search (RediSearch ``FT.*``), else why not, in one line."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.execute_command("FT._LIST")  # type: ignore[no-untyped-call]
        return None
    except redis.ResponseError as exc:
        version = client.info("server").get("redis_version", "?")
        return (f"Redis {version} at {url} has no vector search (FT._LIST: {exc}), which LiteLLM's "
                "redis-semantic cache needs")
    except redis.RedisError as exc:
        return f"no Redis at {url}: {exc}"
    finally:
        client.close()


def _section(name: str, peer: str, venvs: Path, skipped: dict[str, str], walls: dict[str, float],
             run: Callable[[Path], dict[str, Any]]) -> dict[str, Any] | None:
    started = time.perf_counter()
    print(f"ragd bench peers: {name} ({peer})...", file=sys.stderr, flush=True)
    try:
        result = run(ensure_venv(peer, venvs).absolute())
    except VenvError as exc:
        skipped[peer] = str(exc)
        return None
    except Exception as exc:  # a peer that fails to run is reported; the other comparisons still run
        skipped[peer] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        return None
    walls[name] = round(time.perf_counter() - started, 1)
    return result


def run_peers(args: argparse.Namespace) -> int:
    """Run every comparison, write the JSON (``--json``) and the Markdown table beside it."""
    from lab.peers.answer_cache import compare_answer_cache
    from lab.peers.retrieval import compare_retrieval
    from lab.peers.semantic import compare_semantic

    venvs = Path(args.peers_dir).absolute()
    redis_url = args.redis_url or "redis://127.0.0.1:6379/0"
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    skipped: dict[str, str] = {}
    walls: dict[str, float] = {}
    info = machine_info()
    result: dict[str, Any] = {"benchmark": "peers", "machine": info, "wall_s": walls}
    with tempfile.TemporaryDirectory(prefix="ragd-peers-") as tmp:
        work = Path(tmp)
        for section, keys in KEYS.items():
            result[section] = dict.fromkeys(keys)
        cache = _section("answer cache", "litellm", venvs, skipped, walls, lambda py: compare_answer_cache(
            py, _mkdir(work / "cache"), redis_url=redis_url, connections=args.connections,
            seconds=args.seconds or 5.0, rounds=args.rounds or 3, tool=args.load_tool))
        result["cache"] = cache or result["cache"]
        retrieval = _section("hybrid retrieval", "llamaindex", venvs, skipped, walls, lambda py: compare_retrieval(
            py, _mkdir(work / "retrieval"), data_dir=data_dir, cache_root=Path(args.cache_dir),
            queries=args.peer_queries, docs=args.peer_docs))
        result["retrieval"] = retrieval or {"scifact": dict.fromkeys(RETRIEVAL_KEYS),
                                            "korquad": dict.fromkeys(RETRIEVAL_KEYS)}
        semantic = _section("semantic cache precision", "gptcache", venvs, skipped, walls,
                            lambda py: compare_semantic(py, _mkdir(work / "semantic")))
        result["semantic_cache"] = semantic or result["semantic_cache"]
    reason = redis_vector_search(redis_url)
    if reason:
        skipped["litellm-redis-semantic-cache"] = reason
    skipped.setdefault("gptcache-default-embedder", "GPTCache's default embedding (Onnx: paraphrase-albert-onnx) "
                       "downloads its model from a model hub, which this machine cannot reach; GPTCache runs with "
                       "ragd's e5 question vectors instead")
    result["skipped"] = skipped
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.json or Path("bench") / "results" / "peers.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(markdown_table(result))
    print(markdown_table(result))
    return 0


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(result: dict[str, Any]) -> str:
    """The side-by-side table: one row per measure, ragd's value next to the peer's (or why there is none)."""
    rows = ["| comparison | measure | ragd | peer | peer system |", "|---|---|---|---|---|"]
    c = result["cache"]
    for label, ours, theirs in (("req/s", "ragd_rps", "litellm_rps"), ("p50 ms", "ragd_ms_p50", "litellm_ms_p50")):
        rows.append(f"| answer cache, exact hits | {label} | {_fmt(c.get(ours), 1)} | {_fmt(c.get(theirs), 2)} | "
                    "LiteLLM proxy + Redis cache |")
    for name, r in result["retrieval"].items():
        rows.append(f"| hybrid retrieval, {name} | nDCG@10 | {_fmt(r.get('ragd_ndcg@10'))} | "
                    f"{_fmt(r.get('llamaindex_ndcg@10'))} | LlamaIndex BM25 + Chroma + QueryFusionRetriever |")
        rows.append(f"| hybrid retrieval, {name} | p50 ms | {_fmt(r.get('ragd_ms_p50'), 1)} | "
                    f"{_fmt(r.get('llamaindex_ms_p50'), 1)} | LlamaIndex BM25 + Chroma + QueryFusionRetriever |")
    s = result["semantic_cache"]
    for label, ours, theirs in (("false-hit rate", "ragd_false_hit_rate", "peer_false_hit_rate"),
                                ("paraphrase hit rate", "ragd_paraphrase_hit_rate", "peer_paraphrase_hit_rate")):
        rows.append(f"| semantic cache | {label} | {_fmt(s.get(ours))} | {_fmt(s.get(theirs))} | "
                    "GPTCache similar cache, default threshold |")
    lines = rows + [""] + [f"- skipped, {peer}: {why}" for peer, why in result.get("skipped", {}).items()]
    info = result.get("machine", {})
    lines.append(f"\nMachine: {info.get('cpu')} ({info.get('cpus')} CPUs), load average {info.get('loadavg')} at "
                 f"the start, commit {info.get('git_commit')}, {info.get('date_utc')}.\n")
    return "\n".join(lines)
