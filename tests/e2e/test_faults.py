"""Fault injection with real processes: the `ragd up` topology under a bounded load from a second
process while Redis, the retriever, the guardrails service and the generator are killed in turn and
brought back. Every request gets a correct answer or the documented degraded response; nothing hangs
past its deadline; after each dependency returns, service recovers by itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab.topology import Topology, TopologySettings
from tests.deploy.test_topology import free_base_port
from tests.e2e.conftest import FIXTURE_CORPUS

pytestmark = pytest.mark.e2e

DEADLINE_S = 90.0
DOWN_S = 8.0
MAX_DOWN_S = 150.0
# What each outage may answer besides a normal 200 (the degradation contract in the README).
DEGRADED = {
    "redis": {"status": {200}, "degraded": "cache"},
    "retriever": {"status": {503}, "code": "service_unavailable"},
    "guardrails": {"status": {503}, "degraded": "guardrails"},
    "generator": {"status": {503}, "code": "service_unavailable"},
}


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    tmp = tmp_path_factory.mktemp("ragd-faults")
    settings = TopologySettings(base_port=free_base_port(), data_dir=tmp / "up", private_redis=True,
                                demo_corpus=FIXTURE_CORPUS)
    # the model writes the answers, so a generator outage is met by the requests it answers
    topo = Topology(settings, extra_env={"RAGD_REQUEST_TIMEOUT_S": str(DEADLINE_S), "RAGD_GENERATOR_BACKEND": "llm"})
    topo.start()
    yield topo
    topo.stop()


def _answered(url: str) -> int:
    body = {"model": "ragd", "max_tokens": 8, "messages": [{"role": "user", "content": "How is Copperleaf tea dried?"}]}
    try:
        return httpx.post(url + "/v1/chat/completions", json=body, headers={"cache-control": "no-cache"},
                          timeout=DEADLINE_S + 30).status_code
    except httpx.HTTPError:
        return 0


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("dependency", ["redis", "retriever", "guardrails", "generator"])
def test_killing_a_dependency_under_load(topology: Topology, dependency: str, tmp_path: Path) -> None:
    gateway = topology.urls["gateway"]
    assert _answered(gateway) == 200
    out = tmp_path / "load.jsonl"
    stop_file = tmp_path / "stop"
    load = subprocess.Popen([sys.executable, "-m", "tests.e2e.loadgen", "--url", gateway, "--seconds", "600",
                             "--out", str(out), "--timeout", str(DEADLINE_S + 30), "--stop-file", str(stop_file)])
    try:
        time.sleep(2)
        killed_at = time.time()
        topology.kill(dependency)
        # stay down until requests sent during the outage have been answered (bounded)
        down_until = time.monotonic() + MAX_DOWN_S
        time.sleep(DOWN_S)
        while time.monotonic() < down_until and not any(
                float(r["t"]) > killed_at + 1 for r in _records(out)):  # type: ignore[arg-type]
            time.sleep(1)
        restarted_at = time.time()
        topology.restart(dependency)
        time.sleep(2)
    finally:
        stop_file.touch()
        load.wait(timeout=DEADLINE_S * 3)
    records = _records(out)
    assert records, "the load process sent nothing"
    allowed = DEGRADED[dependency]
    # requests in flight at some point of the outage (slow CPU generation makes few of them start in it)
    during = [r for r in records
              if float(r["t"]) < restarted_at and float(r["t"]) + float(r["seconds"]) > killed_at + 1]  # type: ignore[arg-type]
    for record in records:
        assert record["status"] != 0, record  # no connection was dropped by the gateway
        assert float(record["seconds"]) <= DEADLINE_S + 5, record  # nothing hung past its deadline  # type: ignore[arg-type]
        status = int(record["status"])  # type: ignore[arg-type]
        if status == 200:
            continue
        assert status in allowed["status"], record
        error = record.get("error", {})
        assert isinstance(error, dict) and error.get("message"), record
        if "code" in allowed:
            assert error.get("code") == allowed["code"], record
        if "degraded" in allowed:
            assert allowed["degraded"] in str(record["degraded"]), record
    assert during, "no request was answered while the dependency was down"
    if dependency == "redis":
        assert all(r["status"] == 200 for r in during), during
        # a request that may read the cache says the cache was bypassed because it is down
        started = [r for r in during if float(r["t"]) > killed_at + 1]  # type: ignore[arg-type]
        assert all("cache" in str(r["degraded"]) for r in started if r["n"] % 2 == 0), started  # type: ignore[operator]
    else:
        assert any(r["status"] in allowed["status"] and r["status"] != 200 for r in during), json.dumps(during)
    if dependency == "generator":
        assert all(r["error"]["sources"] for r in during if r["status"] == 503), during  # type: ignore[index]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _answered(gateway) != 200:
        time.sleep(1)
    assert _answered(gateway) == 200, f"no recovery after {dependency} came back"
