"""``ragd bench {gateway,cache,retrieval,guardrails,embeddings,all} [--out DIR] [--quick]``: measured latencies.

Every benchmark is bounded in count and time, runs on loopback only, shows progress and writes
``DIR/<name>.json`` (machine info with the load average, p50/p95/p99 and the runs behind each
median) plus ``DIR/<name>.png`` where a picture helps, and ``DIR/summary.md`` (the headline table).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.bench.common import machine_info, write_json

__all__ = ["BENCHES", "add_bench", "headline", "run"]

Bench = Callable[[argparse.Namespace], dict[str, Any]]


def _gateway(opts: argparse.Namespace) -> dict[str, Any]:
    from lab.bench.http import bench_gateway

    return bench_gateway(opts)


def _piece(name: str) -> Bench:
    def bench(opts: argparse.Namespace) -> dict[str, Any]:
        from lab.bench import pieces

        result: dict[str, Any] = getattr(pieces, f"bench_{name}")(opts)
        return result

    return bench


BENCHES: dict[str, Bench] = {
    "gateway": _gateway,
    "cache": _piece("cache"),
    "retrieval": _piece("retrieval"),
    "guardrails": _piece("guardrails"),
    "embeddings": _piece("embeddings"),
}


def _fmt(value: Any) -> str:
    return "n/a" if value is None else str(value)


def headline(name: str, result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(metric, value, target) rows of one benchmark's result for the summary table."""
    if "error" in result:
        return [(f"{name}: failed", result["error"][:120], "")]
    if name == "gateway":
        s = result["summary"]
        sem = result["semantic_httpx_sequential"]
        c = result["connections"]
        return [("bare FastAPI endpoint p50, 1 conn (ms)", _fmt(s["bare"]["p50_ms_c1"]), ""),
                ("gateway exact hit p50, 1 conn (ms)", _fmt(s["exact"]["p50_ms_c1"]), "<= 3"),
                (f"bare endpoint throughput, {c} conns (req/s)", _fmt(s["bare"]["rps"]), ""),
                (f"gateway exact hit throughput, {c} conns (req/s)", _fmt(s["exact"]["rps"]), ""),
                ("exact / bare throughput", _fmt(s["throughput_ratio"]), ">= 0.5"),
                ("gateway semantic hit p50, httpx sequential (ms)",
                 f"{_fmt(sem.get('p50_ms'))} ({sem['semantic_hits']}/{sem['asked']} hits)", "<= 25")]
    if name == "cache":
        rows = []
        for backend in ("memory", "redis"):
            r = result.get(backend)
            if r and "error" not in r:
                rows += [(f"AnswerCache exact hit p50, {backend} (ms)", _fmt(r["exact_hit"]["p50_ms"]), ""),
                         (f"AnswerCache semantic hit p50 incl. embedding, {backend} (ms)",
                          _fmt(r["semantic_hit"]["p50_ms"]), "<= 25")]
        return rows
    if name == "embeddings":
        return [("embed one question p50 / p95 (ms)", f"{result['query']['p50_ms']} / {result['query']['p95_ms']}", ""),
                ("embed one 500-char passage p50 / p95 (ms)",
                 f"{result['passage']['p50_ms']} / {result['passage']['p95_ms']}", ""),
                ("32 passages in one call (passages/s)", _fmt(result["passages_per_second"]), "")]
    if name == "retrieval":
        return [(f"retrieve p50 / p95, {r['config']} (ms)", f"{_fmt(r.get('p50_ms'))} / {_fmt(r.get('p95_ms'))}", "")
                for r in result["configs"]]
    ttft = {(r["window_chars"], r["tokens_per_second"]): r["added_ms_median"] for r in result["stream_holdback_ttft"]}
    rows = [("whole input check p50 / p95 (ms)",
             f"{result['input_check']['p50_ms']} / {result['input_check']['p95_ms']}", "")]
    rows += [(f"TTFT added by hold-back {w} chars at {t:.0f} tok/s (ms)", _fmt(v), "") for (w, t), v in ttft.items()]
    return rows


def _summary_md(results: dict[str, dict[str, Any]]) -> str:
    info = next(iter(results.values())).get("machine", {})
    lines = ["| benchmark | metric | value | target |", "|---|---|---|---|"]
    # each benchmark's own date and load: they may come from separate runs
    for name, result in results.items():
        lines += [f"| {name} | {m} | {v} | {t} |" for m, v, t in headline(name, result)]
    runs = "; ".join(f"{n}: {r.get('machine', {}).get('date_utc')}, load {r.get('machine', {}).get('loadavg')}"
                     for n, r in results.items())
    return "\n".join(lines) + (f"\n\nMachine: {info.get('cpu')} ({info.get('cpus')} CPUs), {info.get('platform')}, "
                               f"Python {info.get('python')}, commit {info.get('git_commit')}.\n"
                               f"Run (UTC) and load average (1/5/15 min) at its start: {runs}.\n")


def _all_results(out: Path) -> dict[str, dict[str, Any]]:
    """Every benchmark's latest result in ``out`` (runs of single benchmarks add up to one table)."""
    found = {}
    for name in BENCHES:
        path = out / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def run(args: argparse.Namespace) -> int:
    names = list(BENCHES) if args.what == "all" else [args.what]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        started = time.perf_counter()
        info = machine_info()
        print(f"ragd bench {name} (load average {info['loadavg']})...", file=sys.stderr, flush=True)
        try:
            result = BENCHES[name](args)
        except Exception as exc:  # one failed benchmark is reported; the others still run
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result = {"benchmark": name, "quick": args.quick, "machine": info,
                  "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                  "wall_s": round(time.perf_counter() - started, 1), **result}
        write_json(out, name, result)
        from lab.bench.plots import plot

        plot(name, result, out / f"{name}.png")
        results[name] = result
        print(json.dumps({m: v for m, v, _ in headline(name, result)}, indent=1, ensure_ascii=False))
    (out / "summary.md").write_text(_summary_md(_all_results(out)))
    failed = [n for n, r in results.items() if "error" in r]
    return 1 if failed else 0


def _apply_quick(args: argparse.Namespace) -> None:
    """--quick: the smallest run that still exercises every path (for the smoke test)."""
    quick = {"rounds": 1, "seconds": 1.0, "sequential": 10, "docs": 200, "queries": 10, "rerank_queries": 5}
    full = {"rounds": 3, "seconds": 5.0, "sequential": 200, "docs": 0, "queries": 300, "rerank_queries": 10}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def add_bench(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=[*BENCHES, "all"], help="which benchmark (all: every one)")
    parser.add_argument("--out", default="bench-results", help="folder for <name>.json, <name>.png, summary.md")
    parser.add_argument("--quick", action="store_true", help="smallest bounded run (smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="repetitions of each noisy measurement (3)")
    parser.add_argument("--seconds", type=float, default=None, help="length of one HTTP load run, seconds (5)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections of the throughput runs")
    parser.add_argument("--sequential", type=int, default=None, help="sequential exact/semantic requests (200)")
    parser.add_argument("--load-tool", choices=["auto", "wrk", "httpx"], default="auto",
                        help="HTTP load generator (auto: wrk when installed)")
    parser.add_argument("--profile", choices=["auto", "always", "never"], default="auto",
                        help="py-spy the gateway under load (auto: when a target is missed)")
    parser.add_argument("--redis-url", default=None, help="also bench AnswerCache on this Redis")
    parser.add_argument("--gateway-redis", action="store_true",
                        help="back the gateway's answer cache with --redis-url (default: in process, as `make run`)")
    parser.add_argument("--scifact", default=str(Path(__file__).resolve().parents[3] / "shared/data/scifact"),
                        help="BEIR SciFact folder for the retrieval benchmark")
    parser.add_argument("--docs", type=int, default=None, help="SciFact documents indexed (0: all 5183)")
    parser.add_argument("--queries", type=int, default=None, help="SciFact test queries timed per config (300)")
    parser.add_argument("--rerank-queries", type=int, default=None,
                        help="queries timed per reranker config (10: a CPU cross-encoder takes seconds per query)")
    parser.add_argument("--no-ingest", dest="ingest", action="store_false",
                        help="time the cached index as it is (e.g. a partial ingest) instead of completing it")
    parser.add_argument("--embedder", default=None,
                        help="retriever embedder backend (default: RAGD_RETRIEVER_EMBEDDER_BACKEND, else e5-onnx)")
    parser.add_argument("--cache-dir", default=str(Path(".ragd") / "eval-cache"),
                        help="where ingested indexes are kept for reuse (shared with ragd eval retrieval)")

    def _run(args: argparse.Namespace) -> int:
        _apply_quick(args)
        return run(args)

    parser.set_defaults(run=_run)
