"""``ragd bench {gateway,cache,retrieval,guardrails,embeddings,scale,peers,all,report} [--out DIR] [--quick]``.

``all`` runs every benchmark but ``scale`` (it ingests collections of up to 100k chunks: ``make bench-scale``)
and ``peers`` (ragd side by side with its peers, :mod:`lab.peers`: ``make bench-peers``).

Every benchmark is bounded in count and time, runs on loopback only, shows progress and writes
``DIR/<name>.json`` (machine info with the load average, p50/p95/p99 and the runs behind each
median) plus ``DIR/<name>.png`` where a picture helps. ``ragd bench report`` writes
``docs/benchmarks.md`` from the recorded runs (:mod:`lab.bench.report`).
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


def _scale(opts: argparse.Namespace) -> dict[str, Any]:
    from lab.bench.scale import bench_scale

    return bench_scale(opts)


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
    "scale": _scale,
}
IN_ALL = ("gateway", "cache", "retrieval", "guardrails", "embeddings")


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
        rows = [("bare FastAPI endpoint p50, 1 conn (ms)", _fmt(s["bare"]["p50_ms_c1"]), ""),
                ("gateway exact hit p50, 1 conn (ms)", _fmt(s["exact"]["p50_ms_c1"]), "<= 3"),
                (f"bare endpoint throughput, {c} conns (req/s)", _fmt(s["bare"]["rps"]), ""),
                (f"gateway exact hit throughput, {c} conns (req/s)", _fmt(s["exact"]["rps"]), ""),
                ("exact / bare throughput", _fmt(s["throughput_ratio"]), ">= 0.5"),
                ("gateway semantic hit p50, httpx sequential (ms)",
                 f"{_fmt(sem.get('p50_ms'))} ({sem['semantic_hits']}/{sem['asked']} hits)", "<= 25")]
        off = result.get("semantic_httpx_sequential_no_evidence")
        if off:
            rows.append(("gateway semantic hit p50 without the evidence check (ms)",
                         f"{_fmt(off.get('p50_ms'))} ({off['semantic_hits']}/{off['asked']} hits)", ""))
        return rows
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
    if name == "scale":
        return _scale_headline(result)
    if name == "retrieval":
        return [(f"retrieve p50 / p95, {r['config']} (ms)", f"{_fmt(r.get('p50_ms'))} / {_fmt(r.get('p95_ms'))}", "")
                for r in result["configs"]]
    ttft = {(r["window_chars"], r["tokens_per_second"]): r["added_ms_median"] for r in result["stream_holdback_ttft"]}
    rows = [("whole input check p50 / p95 (ms)",
             f"{result['input_check']['p50_ms']} / {result['input_check']['p95_ms']}", "")]
    rows += [(f"TTFT added by hold-back {w} chars at {t:.0f} tok/s (ms)", _fmt(v), "") for (w, t), v in ttft.items()]
    return rows


def _scale_headline(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for size, r in result["sizes"].items():
        if "skipped" in r:
            rows.append((f"{size} chunks", f"not run: {r['skipped']}", ""))
            continue
        big = int(size) >= 100_000
        rows += [(f"hybrid p50 / p95 at {size} chunks (ms)", f"{r['hybrid_ms_p50']} / {r['hybrid_ms_p95']}",
                  "<= 50 / <= 120" if big else ""),
                 (f"BM25 / dense p50 at {size} chunks (ms)", f"{r['bm25_ms_p50']} / {r['dense_ms_p50']}", ""),
                 (f"add 100 documents at {size} chunks (s, hashed vectors)", _fmt(r["add100_s"]),
                  "<= 10" if big else ""),
                 (f"memory per chunk at {size} chunks (bytes)", _fmt(r["rss_bytes_per_chunk"]), "")]
    ingest = result.get("ingest")
    if ingest:
        rows.append(("ingest overhead over the embedders (%)",
                     f"{ingest['overhead_pct']} ({ingest['ingest_s']} s vs {ingest['embed_s']} s)", "<= 15"))
    return rows


def run(args: argparse.Namespace) -> int:
    if args.what == "report":
        from lab.bench.report import write_report

        return write_report(Path(args.out), Path(args.page))
    names = list(IN_ALL) if args.what == "all" else [args.what]
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
        if getattr(args, "json", None):
            target = Path(args.json)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
            plot(name, result, target.with_suffix(".png"))
        results[name] = result
        print(json.dumps({m: v for m, v, _ in headline(name, result)}, indent=1, ensure_ascii=False))
    failed = [n for n, r in results.items() if "error" in r]
    return 1 if failed else 0


def _apply_quick(args: argparse.Namespace) -> None:
    """--quick: the smallest run that still exercises every path (for the smoke test)."""
    quick = {"rounds": 1, "seconds": 1.0, "sequential": 10, "docs": 200, "queries": 10, "rerank_queries": 5,
             "ingest_docs": 4}
    full = {"rounds": 3, "seconds": 5.0, "sequential": 200, "docs": 0, "queries": 300, "rerank_queries": 10,
            "ingest_docs": 60}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes are whole numbers of chunks, comma-separated: {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("at least one size, each at least 1")
    return sizes


def add_bench(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=[*BENCHES, "peers", "all", "report"],
                        help="which benchmark (all: every one but scale and peers; report: write --page from the "
                             "runs in --out)")
    parser.add_argument("--out", default="bench/results", help="folder for <name>.json and <name>.png")
    parser.add_argument("--page", default="docs/benchmarks.md", help="the page `report` writes")
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
    parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000],
                        help="scale: collection sizes in chunks, comma-separated (10000,100000; 1000000 runs only "
                             "when the memory measured at the smaller sizes projects under --max-rss-gib)")
    parser.add_argument("--json", default=None,
                        help="also write the result JSON here (and the plot beside it, .png); peers: the result JSON "
                             "(default bench/results/peers.json; its Markdown table goes beside it, .md)")
    parser.add_argument("--data", default=None,
                        help="scale: the evaluation data folder with SciFact and KorQuAD (default: ../shared/data)")
    parser.add_argument("--workdir", default=None, help="scale: where collections are built (default: a temp dir)")
    parser.add_argument("--ingest-docs", type=int, default=None,
                        help="scale: documents of the ingest-overhead run with the real embedders (60)")
    parser.add_argument("--max-build-s", type=float, default=3600.0,
                        help="scale: a size whose build time, projected from the last size, passes this is not run")
    parser.add_argument("--max-rss-gib", type=float, default=8.0,
                        help="scale: a size over 100k whose process memory, projected from the last size, passes "
                             "this many GiB is not run (8)")
    parser.add_argument("--store-writes", choices=["vectors", "full"], default="vectors",
                        help="scale: how the measured collection is written: 'vectors', only what a search reads from "
                             "the store (vectors, doc ids), the view built in memory; 'full', every row as ingest "
                             "writes it, the view loaded back from the store (several times slower)")
    parser.add_argument("--lean", action="store_true",
                        help="scale: one dense vector per chunk and no English side (a third of the store writes; "
                             "the JSON says so)")
    parser.add_argument("--no-bare", dest="bare", action="store_false",
                        help="scale: do not time a bare FastAPI endpoint beside each size")
    parser.add_argument("--cache-dir", default=str(Path(".ragd") / "eval-cache"),
                        help="where ingested indexes are kept for reuse (shared with ragd eval retrieval)")

    parser.add_argument("--peers-dir", default=".peers", help="peers: where the peers' virtualenvs are built")
    parser.add_argument("--data-dir", default=None, help="peers: the shared evaluation data (default ../shared/data)")
    parser.add_argument("--peer-queries", type=int, default=100,
                        help="peers: judged queries per retrieval dataset (the subset's size)")
    parser.add_argument("--peer-docs", type=int, default=200,
                        help="peers: documents per retrieval dataset (their gold ones, then the corpus's first)")

    def _run(args: argparse.Namespace) -> int:
        if args.what == "peers":
            from lab.peers.bench import run_peers

            return run_peers(args)
        _apply_quick(args)
        return run(args)

    parser.set_defaults(run=_run)
