"""A/B (2026-11-28, not part of ragd bench): the embedded gateway as is vs with the trivial FastAPI
dependencies of gateway/deps.py (_pipeline, _settings, _components) made async, so no request hops
through the threadpool. Both primed, then alternately driven by wrk (4 s at 1 and at 16 connections,
4 rounds). Run from the repo root: .venv/bin/python bench/experiments/async_deps_ab.py"""
import json, os, sys, tempfile, statistics
from pathlib import Path

from gateway.bench.common import Load, free_port, run_load, serve
from gateway.bench.http import QUESTION, _chat_body, _gateway_env, _prime

work = Path(tempfile.mkdtemp(prefix="ragd-exp-"))
servers = {}
for name, argv in (("stock", ["-m", "services.cli", "serve", "--port"]), ("async-deps", [str(Path(__file__).with_name("async_deps_gateway.py"))])):
    (work / name).mkdir()
    env = _gateway_env(work / name, None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    port = free_port()
    servers[name] = serve(name, [*argv, str(port)], env, work / name, port=port)
    try:
        _prime(servers[name].base_url + "/v1/chat/completions")
    except Exception:
        for s in servers.values():
            s.stop()
        raise
print((work / "async-deps" / "async-deps.log").read_text()[:300], file=sys.stderr)
rows = {n: {"c1": [], "c16": [], "rps": []} for n in servers}
try:
    for r in range(4):
        for name in (list(servers) if r % 2 == 0 else list(servers)[::-1]):
            url = servers[name].base_url + "/v1/chat/completions"
            a = run_load(Load(url, _chat_body(QUESTION), 1, 4), work)
            b = run_load(Load(url, _chat_body(QUESTION), 16, 4), work)
            rows[name]["c1"].append(a["p50_ms"]); rows[name]["c16"].append(b["p50_ms"]); rows[name]["rps"].append(b["rps"])
            print(r, name, a["p50_ms"], b["p50_ms"], b["rps"], a["errors"] + b["errors"], os.getloadavg()[0], flush=True)
finally:
    for s in servers.values():
        s.stop()
print(json.dumps({n: {k: statistics.median(v) for k, v in d.items()} for n, d in rows.items()}))
