"""``python -m lab.cache.latency``: semantic and exact cache hits through the whole embedded gateway,
with the evidence check on and off, measured side by side.

Two gateways (the same code and corpus; one with ``RAGD_CACHE_EVIDENCE=false``) run at once and
are asked in alternation, one request at a time, so both see the same machine load. Each is primed
with one generated answer; then every paraphrase the cache would serve is asked of both (a semantic
hit: embedding + guards, and with the check the question's own retrieval, started beside the
embedding), and the primed question itself (an exact hit, which never retrieves) as often.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from gateway.bench.common import Server, free_port, serve, summarize
from gateway.bench.http import (
    QUESTION,
    _chat_body,
    _gateway_env,
    _prime,
    _stage_means,
    _stage_sums,
    paraphrases,
    semantic_candidates,
)

__all__ = ["main", "measure"]

CONFIGS = {"evidence_on": "true", "evidence_off": "false"}

def measure(servers: dict[str, Server], questions: list[str], repeats: int) -> dict[str, Any]:
    """Alternate the servers request by request: each question (and the exact one) to each server."""
    urls = {name: s.base_url + "/v1/chat/completions" for name, s in servers.items()}
    samples: dict[str, dict[str, list[float]]] = {name: {"semantic": [], "exact": []} for name in urls}
    outcomes: dict[str, dict[str, int]] = {name: {} for name in urls}
    before = {name: _stage_sums(s.base_url) for name, s in servers.items()}
    plan = [(q, kind) for _ in range(repeats) for q in questions for kind in ("semantic", "exact")]
    with httpx.Client(timeout=120) as client:
        for i, (question, kind) in enumerate(tqdm(plan, desc="alternating requests", unit="req")):
            order = list(urls) if i % 2 == 0 else list(urls)[::-1]
            for name in order:
                asked = question if kind == "semantic" else QUESTION
                start = time.perf_counter()
                response = client.post(urls[name], json=_chat_body(asked))
                elapsed = time.perf_counter() - start
                got = response.headers.get("x-ragd-cache", "error")
                outcomes[name][f"{kind}:{got}"] = outcomes[name].get(f"{kind}:{got}", 0) + 1
                if response.status_code == 200 and got == kind:
                    samples[name][kind].append(elapsed)
    stages = {name: _stage_means(before[name], _stage_sums(s.base_url)) for name, s in servers.items()}
    return {name: {"semantic_hit": summarize(samples[name]["semantic"]), "exact_hit": summarize(samples[name]["exact"]),
                   "outcomes": outcomes[name], "server_side_mean_ms": stages[name]} for name in urls}

def _start(name: str, evidence: str, work: Path) -> Server:
    env = {**_gateway_env(work / name, None), "RAGD_CACHE_EVIDENCE": evidence}
    (work / name).mkdir(parents=True, exist_ok=True)
    port = free_port()
    return serve(name, ["-m", "services.cli", "serve", "--port", str(port)], env, work / name, port=port)

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.cache.latency", description=__doc__)
    parser.add_argument("--questions", type=int, default=30, help="Paraphrases asked (each a semantic hit).")
    parser.add_argument("--repeats", type=int, default=2, help="Times each paraphrase is asked of each gateway.")
    parser.add_argument("--json", type=Path, default=Path("bench/results/cache_evidence_latency.json"))
    args = parser.parse_args(argv)
    candidates = asyncio.run(semantic_candidates(paraphrases()))[: args.questions]
    with tempfile.TemporaryDirectory(prefix="ragd-evidence-bench-") as tmp:
        work = Path(tmp)
        servers: dict[str, Server] = {}
        try:
            for name, evidence in CONFIGS.items():
                print(f"starting gateway {name}...", file=sys.stderr)
                servers[name] = _start(name, evidence, work)
                _prime(servers[name].base_url + "/v1/chat/completions")
            result = measure(servers, candidates, args.repeats)
        finally:
            for server in servers.values():
                server.stop()
    report = {"question": QUESTION, "paraphrases": len(candidates), "repeats": args.repeats, **result,
              "semantic_p50_ms": {n: r["semantic_hit"].get("p50_ms") for n, r in result.items()},
              "exact_p50_ms": {n: r["exact_hit"].get("p50_ms") for n, r in result.items()},
              "load_average_1m_at_end": _loadavg()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("semantic_p50_ms", "exact_p50_ms", "load_average_1m_at_end")}))
    return 0

def _loadavg() -> float:
    return round(float(Path("/proc/loadavg").read_text().split()[0]), 2) if Path("/proc/loadavg").exists() else -1.0

if __name__ == "__main__":
    raise SystemExit(main())

