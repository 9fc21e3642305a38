"""`make compose-smoke`'s checks against a running compose stack (scripts/containers/compose-smoke.sh starts it).

Through the published gateway, with the official `openai` client: a collection is created and filled, a Korean
and an English question are answered with citations, and the English one asked again is an exact cache hit
(`x-ragd-cache: exact`). Then every ragd service's `/metrics` (read inside its own container: none but the
gateway is published, and the gateway's metrics are on its internal port, so its public `/metrics` must be a
404), the gateway's dependency view, and Prometheus's targets API (every target up). Prints one line per check;
exits non-zero on the first failure.

    python scripts/containers/smoke.py --project ragd-smoke --gateway http://127.0.0.1:18080 \\
        --prometheus http://127.0.0.1:19090 --key KEY
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from openai import OpenAI

DOCUMENTS = [
    {"id": "rrf", "title": "Reciprocal rank fusion",
     "text": "Reciprocal rank fusion (RRF) merges ranked lists: each document scores the sum of 1/(k + rank) "
             "over the lists, with k = 60. ragd fuses its BM25 and dense rankings this way."},
    {"id": "lighthouse-ko", "title": "오로라 등대",
     "text": "오로라 등대는 1887년에 세워졌으며 높이는 32미터이다. 등대지기는 매일 밤 등불을 관리했다."},
    {"id": "bm25", "title": "BM25",
     "text": "BM25 scores a document by term frequency, inverse document frequency and document length."},
]
QUESTIONS = [("ko", "오로라 등대는 언제 세워졌나요?", "lighthouse-ko"),
             ("en", "In one short sentence: what is reciprocal rank fusion?", "rrf")]
# room to finish: only an answer that ends on its own ("stop") is cached, so the repeat can be an exact hit
MAX_TOKENS = 256
# service -> port of its /metrics inside its container (the gateway's internal metrics port)
METRICS = {"gateway": 8100, "retriever": 8002, "guardrails": 8004, "generator": 8003}


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        sys.exit(1)


def _inside(project: str, service: str, url: str) -> tuple[int, str]:
    """GET ``url`` from inside ``service``'s container (python is in every ragd image)."""
    code = ("import sys, urllib.request, urllib.error\n"
            f"try:\n r = urllib.request.urlopen({url!r}, timeout=20); print(r.status); print(r.read().decode())\n"
            "except urllib.error.HTTPError as e:\n print(e.code)")
    out = subprocess.run(["docker", "compose", "-p", project, "exec", "-T", service, "python", "-c", code],
                         capture_output=True, text=True, timeout=60)
    status, _, body = out.stdout.partition("\n")
    return (int(status) if status.strip().isdigit() else 0), body


def corpus(gateway: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    created = httpx.post(f"{gateway}/v1/collections", json={"name": "default"}, headers=headers, timeout=60)
    check("create collection default", created.status_code in (201, 409), f"HTTP {created.status_code}")
    added = httpx.post(f"{gateway}/v1/collections/default/documents", json={"documents": DOCUMENTS},
                       headers=headers, timeout=300)
    check("add 3 documents (en, ko)", added.status_code == 200, added.text[:200])


def questions(gateway: str, key: str) -> None:
    client = OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=900)
    for lang, question, doc_id in QUESTIONS:
        start = time.perf_counter()
        raw = client.chat.completions.with_raw_response.create(
            model="ragd", messages=[{"role": "user", "content": question}], max_tokens=MAX_TOKENS, temperature=0)
        reply = raw.parse()
        cited = {c.get("document_id") for c in (reply.model_extra or {}).get("citations") or []}
        text = reply.choices[0].message.content or ""
        check(f"{lang} question answered with citations", bool(text.strip()) and doc_id in cited,
              f"{(time.perf_counter() - start) * 1000:.0f} ms, finish {reply.choices[0].finish_reason}, cited "
              f"{sorted(cited)}, x-ragd-cache {raw.headers.get('x-ragd-cache')}, {text[:80]!r}")
    _, question, _ = QUESTIONS[1]
    start = time.perf_counter()
    raw = client.chat.completions.with_raw_response.create(
        model="ragd", messages=[{"role": "user", "content": question}], max_tokens=MAX_TOKENS, temperature=0)
    check("the repeat is an exact hit", raw.headers.get("x-ragd-cache") == "exact",
          f"x-ragd-cache {raw.headers.get('x-ragd-cache')}, {(time.perf_counter() - start) * 1000:.1f} ms")


def threads(project: str) -> None:
    """The generator runs under a one-CPU quota (smoke.compose.yml): llama.cpp's threads follow it."""
    code = ("from services.cpus import cgroup_cpu_limit; from generator.settings import GeneratorSettings; "
            "print(cgroup_cpu_limit(), GeneratorSettings().threads)")
    out = subprocess.run(["docker", "compose", "-p", project, "exec", "-T", "generator", "python", "-c", code],
                         capture_output=True, text=True, timeout=60).stdout.split()
    check("the generator's threads follow its CPU quota", out == ["1.0", "1"], f"quota, threads: {out}")


def metrics(project: str, gateway: str) -> None:
    public = httpx.get(f"{gateway}/metrics", timeout=10)
    check("the gateway's public /metrics is a 404", public.status_code == 404, f"HTTP {public.status_code}")
    for service, port in METRICS.items():
        status, body = _inside(project, service, f"http://127.0.0.1:{port}/metrics")
        families = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line and line[0] != "#"}
        ragd = sorted(f for f in families if f.startswith("ragd_"))
        check(f"{service} /metrics", status == 200 and (bool(ragd) or service == "generator"),
              f"HTTP {status}, {len(families)} series names, {len(ragd)} ragd_*")
    status, body = _inside(project, "gateway", "http://127.0.0.1:8100/ready?deep=1")
    deps = json.loads(body).get("dependencies", {}) if status in (200, 503) else {}
    check("gateway /ready?deep=1: every dependency up", status == 200,
          ", ".join(f"{k} {v['state']}" for k, v in deps.items()))


def _until(what: str, probe: Callable[[], tuple[bool, str]], timeout_s: float) -> None:
    deadline, detail = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        ok, detail = probe()
        if ok:
            check(what, True, detail)
            return
        time.sleep(3)
    check(what, False, detail)


def prometheus(base: str) -> None:
    def targets() -> tuple[bool, str]:
        data: dict[str, Any] = httpx.get(f"{base}/api/v1/targets", timeout=10).json()
        active = data["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in active}
        want = {"gateway", "retriever", "guardrails", "generator", "prometheus"}
        return want <= set(health) and all(h == "up" for h in health.values()), json.dumps(health)

    _until("Prometheus scrapes every target (targets API)", targets, 90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    threads(args.project)
    corpus(args.gateway, args.key)
    questions(args.gateway, args.key)
    metrics(args.project, args.gateway)
    prometheus(args.prometheus)
    print("compose smoke: every check passed", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
