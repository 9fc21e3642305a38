"""What every ragd benchmark shares: percentiles, machine info, subprocess servers, the load generator."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ["BARE_BODY_ENV", "Load", "Server", "bare_app", "free_port", "machine_info", "median_of", "run_load", "serve",
           "summarize", "write_json"]

BARE_BODY_ENV = "RAGD_BENCH_BARE_BODY"


# ---------------------------------------------------------------- measuring


def summarize(samples_s: Sequence[float]) -> dict[str, float]:
    """n, mean and p50/p95/p99 (nearest rank) of latencies given in seconds, in milliseconds."""
    if not samples_s:
        return {"n": 0}
    ordered = sorted(samples_s)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"n": len(ordered), "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
            "p50_ms": round(statistics.median(ordered) * 1000, 3), "p95_ms": rank(0.95), "p99_ms": rank(0.99)}


def machine_info() -> dict[str, Any]:
    model = ""
    with suppress(OSError):
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], check=False).stdout.strip()
    return {"date_utc": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node(),
            "platform": platform.platform(), "python": platform.python_version(), "cpu": model,
            "cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()], "git_commit": commit}


def median_of(rounds: Sequence[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rounds if r.get(key) is not None]
    return round(statistics.median(values), 3) if values else float("nan")


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve(name: str, argv: Sequence[str], env: dict[str, str], workdir: Path, *, port: int,
          ready_path: str = "/ready", timeout_s: float = 600.0, executable: str = sys.executable) -> Server:
    """Start ``executable argv`` (a server on ``port``; by default this Python) and wait until ``ready_path``
    answers 200."""
    log = workdir / f"{name}.log"
    process = subprocess.Popen([executable, *argv], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n" + log.read_text(errors="replace")[-3000:])
        with suppress(httpx.HTTPError):
            if httpx.get(server.base_url + ready_path, timeout=2).status_code == 200:
                return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"{name} did not become ready in {timeout_s:.0f}s:\n" + log.read_text(errors="replace")[-3000:])


def bare_app() -> FastAPI:
    """A bare FastAPI endpoint answering ``POST /v1/chat/completions`` with a fixed JSON body (the
    gateway's cached answer, read from the file named by ``RAGD_BENCH_BARE_BODY``): the floor the
    gateway's exact hit is compared to. Run with ``uvicorn --factory lab.bench:bare_app``."""
    body = json.loads(Path(os.environ[BARE_BODY_ENV]).read_text())
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        await request.json()
        return JSONResponse(body, headers={"x-ragd-cache": "exact"})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


# ---------------------------------------------------------------- load generation


@dataclass(frozen=True)
class Load:
    """One load run: ``connections`` concurrent clients posting ``body`` to ``url`` for ``seconds``."""

    url: str
    body: dict[str, Any]
    connections: int
    seconds: float


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p95_us": %%d, '
    .. '"p99_us": %%d, "mean_us": %%f, "errors": %%d, "non2xx": %%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def _wrk(load: Load, workdir: Path) -> dict[str, Any]:
    script = workdir / "post.lua"
    script.write_text(_WRK_SCRIPT % json.dumps(load.body))
    out = subprocess.run(["wrk", "-t1", f"-c{load.connections}", f"-d{max(1, round(load.seconds))}s", "--timeout",
                          "10s", "-s", str(script), load.url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"^RESULT (\{.*\})$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError("wrk printed no result:\n" + out)
    raw = json.loads(match.group(1))
    return {"tool": "wrk", "connections": load.connections, "requests": raw["requests"],
            "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1), "p50_ms": raw["p50_us"] / 1000,
            "p95_ms": raw["p95_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
            "mean_ms": round(raw["mean_us"] / 1000, 3), "errors": raw["errors"] + raw["non2xx"]}


async def _httpx(load: Load) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=load.connections, max_keepalive_connections=load.connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        stop_at = time.perf_counter() + load.seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                response = await client.post(load.url, json=load.body)
                latencies.append(time.perf_counter() - start)
                errors += response.status_code != 200

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(load.connections)))
        elapsed = time.perf_counter() - began
    return {"tool": "httpx", "connections": load.connections, "requests": len(latencies),
            "rps": round(len(latencies) / elapsed, 1), **summarize(latencies), "errors": errors}


def run_load(load: Load, workdir: Path, *, tool: str = "auto") -> dict[str, Any]:
    """Drive ``load.url`` with wrk (``tool='auto'`` when installed) or the httpx async client."""
    if tool == "wrk" or (tool == "auto" and shutil.which("wrk")):
        return _wrk(load, workdir)
    return asyncio.run(_httpx(load))



def print_json(payload: dict[str, Any], path: Path | None) -> None:
    """Print ``payload`` as JSON, and write it to ``path`` too when one is given (its folder made)."""
    text = json.dumps(payload, indent=2)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")


def write_json(out: Path | None, name: str, payload: dict[str, Any]) -> None:
    if out is not None:
        (out / f"{name}.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
