"""Answer cache, ragd against the LiteLLM proxy with its Redis cache, in front of the same model server.

One OpenAI-compatible model server (``ragd serve generator``: llama.cpp with the packaged SmolLM2) answers
the first request of each; the repeats are cache hits that never reach it. ragd is the embedded gateway
(``ragd serve`` with the demo corpus, its answer cache in Redis); LiteLLM is ``litellm --config`` (one
worker, ``cache: true`` with ``type: redis`` on the same Redis). Both are driven by the same load
generator (wrk when installed), alternating, each at 1 connection and at ``connections``.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

import httpx
import yaml

from lab.bench.common import Load, Server, free_port, run_load, serve
from lab.bench.http import QUESTION, _chat_body, _gateway_env, _prime

__all__ = ["compare_answer_cache", "litellm_config"]


def litellm_config(model_url: str, redis_url: str, namespace: str) -> dict[str, Any]:
    """The proxy's config: model ``ragd`` is the model server; responses cached in Redis."""
    parts = httpx.URL(redis_url)
    db = int(parts.path.strip("/") or 0)
    return {"model_list": [{"model_name": "ragd", "litellm_params": {
                "model": "openai/ragd-llm", "api_base": model_url, "api_key": "none"}}],
            "litellm_settings": {"cache": True, "cache_params": {
                "type": "redis", "host": parts.host, "port": parts.port or 6379, "db": db,
                "namespace": namespace}, "telemetry": False},
            # no keys on either side (ragd serves loopback in open mode), so neither pays for authentication
            "general_settings": {"dangerously_permit_weak_or_unset_master_key": True}}


def _post(url: str) -> httpx.Response:
    response = httpx.post(url, json=_chat_body(QUESTION), timeout=300)
    response.raise_for_status()
    return response


def _start_litellm(python: Path, model_url: str, redis_url: str, work: Path) -> Server:
    config = work / "litellm.yaml"
    config.write_text(yaml.safe_dump(litellm_config(model_url, redis_url, f"ragd-peers-{os.getpid()}")))
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
           "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "True"}
    return serve("litellm", ["--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                             "--num_workers", "1", "--telemetry", "False"], env, work, port=port,
                 ready_path="/health/liveliness", timeout_s=300, executable=str(python.parent / "litellm"))


def _rounds(urls: dict[str, str], connections: int, seconds: float, rounds: int, work: Path,
            tool: str) -> list[dict[str, Any]]:
    rows = []
    for url in urls.values():  # warm both up
        run_load(Load(url, _chat_body(QUESTION), connections, 1), work, tool=tool)
    for r in range(rounds):
        for name in (list(urls) if r % 2 == 0 else list(urls)[::-1]):
            _post(urls[name])  # the entry is there (a miss would be answered and stored again now)
            for conns in (1, connections):
                result = run_load(Load(urls[name], _chat_body(QUESTION), conns, seconds), work, tool=tool)
                # a refusal or an error is no cache hit: throughput counts the 200s only
                ok = 1 - result["errors"] / max(result["requests"], 1)
                rows.append({"round": r, "target": name, **result, "rps": round(result["rps"] * ok, 1),
                             "rps_all_responses": result["rps"]})
    return rows


def _median(rows: list[dict[str, Any]], target: str, conns: int, key: str) -> float:
    values = [r[key] for r in rows if r["target"] == target and r["connections"] == conns]
    return round(float(statistics.median(values)), 3)


def compare_answer_cache(python: Path, work: Path, *, redis_url: str, connections: int = 16,
                         seconds: float = 5.0, rounds: int = 3, tool: str = "auto") -> dict[str, Any]:
    """The ``cache`` section of ``ragd bench peers`` (LiteLLM runs from ``python``'s virtualenv)."""
    gen_port = free_port()
    generator = serve("generator", ["-m", "services.cli", "serve", "generator", "--host", "127.0.0.1",
                                    "--port", str(gen_port)], _gateway_env(work, None), work, port=gen_port,
                      ready_path="/health")
    servers = [generator]
    try:
        model_url = f"{generator.base_url}/v1"
        env = {**_gateway_env(work, redis_url), "RAGD_GENERATOR_URL": model_url}
        port = free_port()
        gateway = serve("gateway", ["-m", "services.cli", "serve", "--port", str(port)], env, work, port=port)
        servers.append(gateway)
        litellm = _start_litellm(python, model_url, redis_url, work)
        servers.append(litellm)
        urls = {"ragd": gateway.base_url + "/v1/chat/completions", "litellm": litellm.base_url + "/v1/chat/completions"}
        _prime(urls["ragd"])
        first = _post(urls["litellm"]).json()
        again = _post(urls["litellm"])
        if again.json()["choices"][0]["message"] != first["choices"][0]["message"]:
            raise RuntimeError("LiteLLM's repeat was not its cached answer")
        rows = _rounds(urls, connections, seconds, rounds, work, tool)
        return {"ragd_rps": _median(rows, "ragd", connections, "rps"),
                "litellm_rps": _median(rows, "litellm", connections, "rps"),
                "ragd_ms_p50": _median(rows, "ragd", connections, "p50_ms"),
                "litellm_ms_p50": _median(rows, "litellm", connections, "p50_ms"),
                "ragd_ms_p50_c1": _median(rows, "ragd", 1, "p50_ms"),
                "litellm_ms_p50_c1": _median(rows, "litellm", 1, "p50_ms"),
                "connections": connections, "seconds_per_run": seconds, "rounds": rounds,
                "load_tool": rows[0]["tool"], "redis_url": redis_url,
                "litellm_cache_hit_headers": {k: v for k, v in again.headers.items() if "cache" in k.lower()},
                "question": QUESTION, "runs": rows,
                "errors": {name: sum(r["errors"] for r in rows if r["target"] == name) for name in urls}}
    finally:
        for server in reversed(servers):
            server.stop()
