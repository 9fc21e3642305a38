"""``ragd bench gateway``: exact and semantic cache hits through the whole embedded gateway, against a bare FastAPI
endpoint returning the same JSON body, both real uvicorn servers driven by the same load generator over loopback.
Semantic hits are timed with the evidence check (the default) and again on a second gateway with it off
(``RAGD_CACHE_EVIDENCE=false``), so its cost is read in the same run. When the targets are missed, py-spy samples
the gateway under load and the samples are grouped by layer (guardrails, cache, JSON, pydantic, logging,
middleware, ...)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from lab.bench.common import BARE_BODY_ENV, Load, Server, free_port, median_of, run_load, serve, summarize

__all__ = ["PROFILE_LAYERS", "QUESTION", "REPO_ROOT", "TARGETS", "bench_gateway", "paraphrases", "profile_layers",
           "semantic_candidates"]

QUESTION = "What is reciprocal rank fusion?"
STOP = ["\n", ". "]  # short, complete answers: finish_reason "stop", so the answer is cached
PARAPHRASE_HEADS = ("Can you explain", "Please explain", "Tell me", "Explain", "Could you describe",
                    "I'd like to know", "Help me understand", "Briefly explain", "Describe", "Summarize")
PARAPHRASE_TAILS = ("what reciprocal rank fusion is", "reciprocal rank fusion", "what reciprocal rank fusion means",
                    "how reciprocal rank fusion works")
PARAPHRASE_ENDS = ("?", ", please.", " in short?", " for me?", " in simple terms?", ".")
REPO_ROOT = str(Path(__file__).resolve().parents[2]) + "/"
TARGETS = {"exact_p50_ms": 3.0, "exact_throughput_ratio": 0.5, "semantic_p50_ms": 25.0}


def paraphrases() -> list[str]:
    """Distinct paraphrases of :data:`QUESTION` (each is embedded afresh: no memo helps them)."""
    return [f"{h} {t}{e}" for e in PARAPHRASE_ENDS for t in PARAPHRASE_TAILS for h in PARAPHRASE_HEADS]


# ---------------------------------------------------------------- 1 + 2: the gateway over HTTP


def _gateway_env(work: Path, redis_url: str | None, *, evidence: bool = True) -> dict[str, str]:
    from gateway.cli import demo_corpus_path

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    env.update({"RAGD_DATA_DIR": str(work / "data"), "RAGD_GATEWAY_DEMO_CORPUS": str(demo_corpus_path()),
                "PYTHONUNBUFFERED": "1"})
    if redis_url:
        env["RAGD_REDIS_URL"] = redis_url
    if not evidence:
        env["RAGD_CACHE_EVIDENCE"] = "false"
    return env


def _chat_body(question: str) -> dict[str, Any]:
    return {"model": "ragd", "messages": [{"role": "user", "content": question}], "max_tokens": 48, "stop": STOP}


def _prime(url: str) -> dict[str, Any]:
    """One real request (retrieve + generate) stores the answer; the identical repeat must be an exact hit."""
    first = httpx.post(url, json=_chat_body(QUESTION), timeout=300)
    first.raise_for_status()
    payload: dict[str, Any] = first.json()
    if payload["choices"][0]["finish_reason"] != "stop":
        raise RuntimeError(f"the priming answer did not finish with 'stop' and is not cached: {payload}")
    _expect_cache(url, QUESTION, "exact")
    return payload


def _expect_cache(url: str, question: str, outcome: str) -> None:
    header = httpx.post(url, json=_chat_body(question), timeout=60).headers.get("x-ragd-cache")
    if header != outcome:
        raise RuntimeError(f"expected x-ragd-cache: {outcome} for {question!r}, got {header}")


def _sequential(url: str, questions: Sequence[str], want: str) -> tuple[list[float], int]:
    """Latency of each request whose ``x-ragd-cache`` is ``want`` (one client, one request at a time)."""
    latencies: list[float] = []
    with httpx.Client(timeout=60) as client:
        for question in questions:
            start = time.perf_counter()
            response = client.post(url, json=_chat_body(question))
            elapsed = time.perf_counter() - start
            if response.status_code == 200 and response.headers.get("x-ragd-cache") == want:
                latencies.append(elapsed)
    return latencies, len(questions)


async def semantic_candidates(questions: Sequence[str]) -> list[str]:
    """The paraphrases the answer cache (default settings) serves from :data:`QUESTION`'s entry: only
    these are sent, since a miss would cost a whole generation."""
    from cache import AnswerCache, CachedAnswer, CacheScope, CacheSettings

    cache = AnswerCache.create(CacheSettings(), None)
    scope = CacheScope("bench", "default", "e1", "p1", "ragd")
    await cache.store(scope, QUESTION, CachedAnswer(content="An answer."))
    try:
        return [q for q in tqdm(questions, desc="screening paraphrases", unit="q")
                if (await cache.lookup(scope, q)).outcome == "semantic"]
    finally:
        await cache.close()


def _ab_rounds(urls: dict[str, str], opts: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Bare and gateway alternate, each at 1 connection (latency) and at ``--connections`` (throughput)."""
    rows: list[dict[str, Any]] = []
    plan = [(r, name, c) for r in range(opts.rounds) for name in (urls if r % 2 == 0 else list(urls)[::-1])
            for c in (1, opts.connections)]
    for url in urls.values():  # warm both servers up before anything is timed
        run_load(Load(url, _chat_body(QUESTION), opts.connections, 1), work, tool=opts.load_tool)
    for round_, name, conns in tqdm(plan, desc="gateway vs bare", unit="run"):
        result = run_load(Load(urls[name], _chat_body(QUESTION), conns, opts.seconds), work, tool=opts.load_tool)
        rows.append({"round": round_, "target": name, **result})
    return rows


def _ab_summary(rows: Sequence[dict[str, Any]], connections: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for target in ("bare", "exact"):
        lat = [r for r in rows if r["target"] == target and r["connections"] == 1]
        thr = [r for r in rows if r["target"] == target and r["connections"] == connections]
        out[target] = {"p50_ms_c1": median_of(lat, "p50_ms"), "p95_ms_c1": median_of(lat, "p95_ms"),
                       "p99_ms_c1": median_of(lat, "p99_ms"), "rps_c1": median_of(lat, "rps"),
                       f"p50_ms_c{connections}": median_of(thr, "p50_ms"), "rps": median_of(thr, "rps"),
                       "errors": sum(r["errors"] for r in lat + thr)}
    out["throughput_ratio"] = round(out["exact"]["rps"] / out["bare"]["rps"], 3) if out["bare"]["rps"] else None
    out["p50_ratio_c1"] = round(out["exact"]["p50_ms_c1"] / out["bare"]["p50_ms_c1"], 2)
    return out


def bench_gateway(opts: argparse.Namespace) -> dict[str, Any]:
    """Exact and semantic cache hits through the whole embedded gateway vs a bare FastAPI endpoint."""
    with tempfile.TemporaryDirectory(prefix="ragd-bench-") as tmp:
        work = Path(tmp)
        env = _gateway_env(work, opts.redis_url if opts.gateway_redis else None)
        port = free_port()
        print("bench gateway: starting the embedded gateway (ingests the demo corpus)...", file=sys.stderr)
        gateway = serve("gateway", ["-m", "services.cli", "serve", "--port", str(port)], env, work, port=port)
        try:
            url = gateway.base_url + "/v1/chat/completions"
            body_file = work / "bare-body.json"
            body_file.write_text(json.dumps(_prime(url)))
            bare_port = free_port()
            bare = serve("bare", ["-m", "uvicorn", "--factory", "lab.bench.common:bare_app", "--port",
                                  str(bare_port), "--log-level", "warning", "--no-access-log"],
                         {**env, BARE_BODY_ENV: str(body_file)}, work, port=bare_port, ready_path="/health")
            candidates = asyncio.run(semantic_candidates(paraphrases()))[:opts.sequential]
            try:
                result = _measure_gateway(url, bare.base_url + "/v1/chat/completions", gateway, candidates, opts,
                                          work)
            finally:
                bare.stop()
        finally:
            gateway.stop()
        result["semantic_httpx_sequential_no_evidence"] = _semantic_without_evidence(candidates, opts, work)
        return result


def _semantic_without_evidence(candidates: Sequence[str], opts: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Semantic hits on a second gateway whose cache serves them without the evidence check."""
    folder = work / "no-evidence"
    folder.mkdir()
    port = free_port()
    print("bench gateway: a second gateway without the evidence check...", file=sys.stderr)
    env = _gateway_env(folder, opts.redis_url if opts.gateway_redis else None, evidence=False)
    gateway = serve("gateway-no-evidence", ["-m", "services.cli", "serve", "--port", str(port)], env, folder,
                    port=port)
    try:
        url = gateway.base_url + "/v1/chat/completions"
        _prime(url)
        semantic, asked, stages = _semantic_hits(gateway, url, candidates)
        return {**summarize(semantic), "asked": asked, "semantic_hits": len(semantic), "server_side_mean_ms": stages}
    finally:
        gateway.stop()


def _semantic_hits(gateway: Server, url: str, candidates: Sequence[str]) -> tuple[list[float], int, dict[str, float]]:
    """The latencies of the semantic hits among ``candidates`` asked one at a time, how many were asked, and the
    server-side stage means over them."""
    before = _stage_sums(gateway.base_url)
    semantic, asked = _sequential(url, candidates, "semantic")
    return semantic, asked, _stage_means(before, _stage_sums(gateway.base_url))


def _measure_gateway(url: str, bare_url: str, gateway: Server, candidates: Sequence[str], opts: argparse.Namespace,
                     work: Path) -> dict[str, Any]:
    rows = _ab_rounds({"bare": bare_url, "exact": url}, opts, work)
    _expect_cache(url, QUESTION, "exact")  # still an exact hit after the load (nothing evicted it)
    summary = _ab_summary(rows, opts.connections)
    before = _stage_sums(gateway.base_url)
    exact_seq, _ = _sequential(url, [QUESTION] * opts.sequential, "exact")
    stages = _stage_means(before, _stage_sums(gateway.base_url))
    semantic, asked, semantic_stages = _semantic_hits(gateway, url, candidates)
    result: dict[str, Any] = {
        "load_tool": rows[0]["tool"], "connections": opts.connections, "seconds_per_run": opts.seconds,
        "rounds": opts.rounds, "question": QUESTION,
        "cache_backend": "redis" if opts.gateway_redis and opts.redis_url else "memory",
        "summary": summary, "runs": rows,
        "exact_httpx_sequential": summarize(exact_seq),
        "exact_server_side_mean_ms": stages,
        "semantic_httpx_sequential": {**summarize(semantic), "asked": asked, "semantic_hits": len(semantic)},
        "semantic_server_side_mean_ms": semantic_stages,
        "targets": TARGETS,
    }
    semantic_p50 = statistics.median(semantic) * 1000 if semantic else float("inf")
    result["met"] = {"exact_p50_ms": summary["exact"]["p50_ms_c1"] <= TARGETS["exact_p50_ms"],
                     "exact_throughput_ratio": (summary["throughput_ratio"] or 0) >= TARGETS["exact_throughput_ratio"],
                     "semantic_p50_ms": semantic_p50 <= TARGETS["semantic_p50_ms"]}
    if opts.profile == "always" or (opts.profile == "auto" and not all(result["met"].values())):
        result["profile"] = _profile(gateway, url, opts, work)
    return result


def _stage_sums(base_url: str) -> dict[str, tuple[float, float]]:
    """(sum seconds, count) of each ``ragd_stage_seconds`` stage and of the chat route's request time."""
    from prometheus_client.parser import text_string_to_metric_families

    sums: dict[str, list[float]] = {}
    families = text_string_to_metric_families(httpx.get(base_url + "/metrics", timeout=10).text)
    for family in (f for f in families if f.name in ("ragd_stage_seconds", "ragd_request_seconds")):
        for sample in family.samples:
            stage = sample.labels.get("stage") or (
                "whole request (server side)" if sample.labels.get("route") == "/v1/chat/completions" else None)
            if stage and sample.name.endswith(("_sum", "_count")):
                sums.setdefault(stage, [0.0, 0.0])[0 if sample.name.endswith("_sum") else 1] += sample.value
    return {k: (v[0], v[1]) for k, v in sums.items()}


def _stage_means(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Mean milliseconds per observation of each stage between two :func:`_stage_sums` snapshots."""
    means = {}
    for stage, (total, count) in after.items():
        total0, count0 = before.get(stage, (0.0, 0.0))
        if count > count0:
            means[stage] = round((total - total0) / (count - count0) * 1000, 3)
    return means


# ---------------------------------------------------------------- profiling


# (category, path fragments): a sample counts for the innermost frame matching one (first listed wins);
# the first entry is a context: any frame of the stack in it claims the sample (the hop, not its wait)
PROFILE_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sync FastAPI dependency -> threadpool hop", ("starlette/concurrency.py", "anyio/to_thread.py",
                                                   "AnyIO worker thread")),
    ("guardrails (input rails)", ("/guardrails/",)),
    ("answer cache", ("/cache/",)),
    ("JSON encode/decode", ("/json/", "orjson", "jsonable_encoder")),
    ("pydantic validation/serialisation", ("/pydantic/", "pydantic_core")),
    ("logging (JSON log line)", ("/logging/", "services/telemetry.py")),
    ("prometheus metrics", ("prometheus_client",)),
    ("ragd middleware (request context, admission, body limit)", ("services/middleware.py", "gateway/limits.py")),
    ("ragd auth + rate limit", ("gateway/auth.py", "gateway/ratelimit.py", "gateway/deps.py")),
    ("ragd route + pipeline", ("gateway/",)),
    ("fastapi/starlette routing + responses", ("/fastapi/", "/starlette/")),
    ("uvicorn + HTTP parsing", ("/uvicorn/", "httptools")),
    ("threads/executor hop", ("threading.py", "/concurrent/")),
    ("asyncio event loop", ("/asyncio/", "uvloop")),
)


# innermost frames of a thread that waits (py-spy in blocking mode samples waiting threads too)
IDLE_FRAMES = ("Condition.wait ", "Runner.run ", "Queue.get ", "_worker (", "Event.wait ", "Thread.join ",
               "select ", "TMonitor.run ")


def _py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def _profile(gateway: Server, url: str, opts: argparse.Namespace, work: Path) -> dict[str, Any]:
    """py-spy samples the gateway while it serves exact hits at ``--connections``; samples grouped by layer."""
    spy = _py_spy()
    if spy is None:
        return {"error": "py-spy is not installed (pip install py-spy)"}
    raw = work / "profile.txt"
    seconds = max(5, round(opts.seconds * 2))
    sampler = subprocess.Popen([spy, "record", "--pid", str(gateway.process.pid), "--duration", str(seconds),
                                "--rate", "200", "--format", "raw", "--full-filenames", "--threads", "--output",
                                str(raw), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    run_load(Load(url, _chat_body(QUESTION), opts.connections, seconds), work, tool=opts.load_tool)
    _, err = sampler.communicate(timeout=120)
    if not raw.exists():
        return {"error": "py-spy failed: " + err.decode(errors="replace")[-500:]}
    lines = raw.read_text().splitlines()
    if opts.out:  # kept with the results, paths shortened
        short = re.compile("|".join(re.escape(p) for p in _path_prefixes()))
        (Path(opts.out) / "gateway-exact-profile.txt").write_text("\n".join(short.sub("", ln) for ln in lines) + "\n")
    return profile_layers(lines)


def _path_prefixes() -> list[str]:
    import sysconfig

    paths = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")}
    return sorted((p.rstrip("/") + "/" for p in paths), key=len, reverse=True)


def profile_layers(lines: Sequence[str]) -> dict[str, Any]:
    """Of the busy samples (innermost frame not a wait): share per thread, per layer (all threads, and the
    event loop's MainThread alone) and of the heaviest ragd functions (inclusive); and how busy the
    event loop was."""
    threads: Counter[str] = Counter()
    idle: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    main: Counter[str] = Counter()
    ragd: Counter[str] = Counter()
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = re.sub(r"^thread \(\d+\): |[-_]?\d+(_\d+)?$", "", frames[0]) if frames[0].startswith("thread") else ""
        if any(frames[-1].startswith(wait) for wait in IDLE_FRAMES):
            idle[thread or "?"] += count
            continue
        threads[thread or "?"] += count
        layer = _layer_of(frames)
        layers[layer] += count
        if thread == "MainThread":
            main[layer] += count
        for frame in {_ragd_frame(f) for f in frames if REPO_ROOT in f and "/site-packages/" not in f
                      and "/cli.py" not in f}:
            ragd[frame] += count
    busy_main = threads["MainThread"] / (threads["MainThread"] + idle["MainThread"] or 1)
    return {"busy_samples": sum(threads.values()), "idle_samples": sum(idle.values()),
            "event_loop_busy_pct": round(100 * busy_main, 1), "busy_thread_share_pct": _shares(threads),
            "layer_share_pct": _shares(layers), "main_thread_layer_share_pct": _shares(main),
            "ragd_functions_inclusive_pct": _shares(ragd, of=sum(threads.values()), top=20)}


def _shares(counts: Counter[str], *, of: int | None = None, top: int | None = None) -> dict[str, float]:
    total = of or sum(counts.values())
    return {k: round(100 * v / total, 1) for k, v in counts.most_common(top)} if total else {}


def _ragd_frame(frame: str) -> str:
    """``func (/repo/gateway/x.py:12)`` -> ``func (gateway/x.py)``: one entry per function."""
    return re.sub(r":\d+\)$", ")", frame.replace(REPO_ROOT, ""))


def _layer_of(frames: Sequence[str]) -> str:
    """The first layer (in :data:`PROFILE_LAYERS` order) a context layer names anywhere in the stack,
    else the layer of the innermost frame that matches one."""
    context = PROFILE_LAYERS[0]
    if any(f in frame for frame in frames for f in context[1]):
        return context[0]
    for frame in reversed(frames):
        for name, fragments in PROFILE_LAYERS:
            if any(f in frame for f in fragments):
                return name
    return "other"
