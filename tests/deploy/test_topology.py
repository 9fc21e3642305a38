"""`ragd up` / Topology: the local twin of docker-compose.yml. Layout tests need no process; the
failure test starts a private Redis; the end-to-end test runs all six processes."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.topology import PORT_OFFSETS, Topology, TopologyError, TopologySettings, redis_answers
from tests.deploy.layout import RAGD_SERVICES, ROOT, compose, unknown_settings
from tests.deploy.promql import ALWAYS_AVAILABLE, exported_names, used_names

FIXTURE_CORPUS = ROOT / "tests" / "fixtures" / "e2e_corpus"
# Set in compose but not by `ragd up`: the API keys come from the user's own environment there, and
# llama.cpp's context and slots are set in compose and follow the settings' defaults locally, and a gateway
# on loopback serves its metrics on its own port (no internal metrics port needed).
COMPOSE_ONLY = {"RAGD_GATEWAY_API_KEYS", "RAGD_GENERATOR_N_PARALLEL", "RAGD_GENERATOR_N_CTX",
                "RAGD_GATEWAY_METRICS_PORT"}


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_base_port() -> int:
    """A base port whose whole block (gateway .. redis) is free."""
    for _ in range(200):
        base = random.randrange(20000, 40000, 10)
        if all(_port_free(base + offset) for offset in PORT_OFFSETS.values()):
            return base
    raise RuntimeError("no free block of ports")


def _settings(tmp_path: Path, **overrides: object) -> TopologySettings:
    values: dict[str, object] = {"base_port": free_base_port(), "data_dir": tmp_path / "up", **overrides}
    return TopologySettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("RAGD_")]:
        monkeypatch.delenv(key)


def test_pieces_follow_the_base_port_and_point_at_each_other(tmp_path: Path) -> None:
    settings = _settings(tmp_path, private_redis=True)
    pieces = {p.name: p for p in Topology(settings).pieces()}
    assert set(pieces) == set(PORT_OFFSETS)
    base = settings.base_port
    for name, offset in PORT_OFFSETS.items():
        assert pieces[name].port == base + offset
    gateway = pieces["gateway"].env
    assert gateway["RAGD_GATEWAY_RETRIEVER_URL"] == f"http://127.0.0.1:{base + 2}"
    assert gateway["RAGD_GATEWAY_GENERATOR_URL"] == f"http://127.0.0.1:{base + 3}/v1"
    assert gateway["RAGD_GATEWAY_GUARDRAILS_URL"] == f"http://127.0.0.1:{base + 4}"
    assert gateway["RAGD_GATEWAY_REDIS_URL"] == f"redis://127.0.0.1:{base + 5}/0"
    assert pieces["retriever"].env["RAGD_RETRIEVER_CHROMA_URL"] == f"http://127.0.0.1:{base + 1}"
    assert pieces["gateway"].command[-4:] == ("--host", "127.0.0.1", "--port", str(base))


def test_an_external_generator_replaces_the_local_llama_cpp(tmp_path: Path) -> None:
    settings = _settings(tmp_path, private_redis=True, generator_url="http://gpu-box.internal:8000/v1",
                         generator_model="qwen2.5-7b")
    topology = Topology(settings)
    pieces = {p.name: p for p in topology.pieces()}
    assert "generator" not in pieces
    assert pieces["gateway"].env["RAGD_GATEWAY_GENERATOR_URL"] == "http://gpu-box.internal:8000/v1"
    assert pieces["gateway"].env["RAGD_GATEWAY_GENERATOR_MODEL"] == "qwen2.5-7b"
    assert topology.urls["generator"] == "http://gpu-box.internal:8000/v1"


def test_a_redis_that_answers_is_used_instead_of_a_private_one(tmp_path: Path) -> None:
    if not redis_answers("redis://127.0.0.1:6379/0"):
        pytest.skip("no Redis at 127.0.0.1:6379 (make redis)")
    topology = Topology(_settings(tmp_path, redis_url="redis://127.0.0.1:6379/0"))
    assert "redis" not in {p.name for p in topology.pieces()}
    assert topology.urls["redis"] == "redis://127.0.0.1:6379/0"
    silent = Topology(_settings(tmp_path, redis_url=f"redis://127.0.0.1:{free_base_port()}/0"))
    assert "redis" in {p.name for p in silent.pieces()}


def test_every_piece_gets_the_settings_compose_gives_its_container(tmp_path: Path) -> None:
    pieces = {p.name: p for p in Topology(_settings(tmp_path, private_redis=True)).pieces()}
    services = compose()["services"]
    for name in RAGD_SERVICES:
        local = set(pieces[name].env)
        assert not unknown_settings(name, local), sorted(unknown_settings(name, local))
        assert local == set(services[name]["environment"]) - COMPOSE_ONLY, name


def test_a_failed_start_stops_what_already_started(tmp_path: Path) -> None:
    settings = _settings(tmp_path, private_redis=True)
    redis_url = f"redis://127.0.0.1:{settings.base_port + PORT_OFFSETS['redis']}/0"
    with socket.socket() as squatter:  # holds Chroma's port, so the start fails after Redis is up
        squatter.bind(("127.0.0.1", settings.base_port + PORT_OFFSETS["chroma"]))
        squatter.listen()
        topology = Topology(settings)
        with pytest.raises(TopologyError, match="chroma: port"):
            topology.start()
    assert not redis_answers(redis_url)
    assert topology.exited() == {}


# ---------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    saved = {k: os.environ.pop(k) for k in [k for k in os.environ if k.startswith("RAGD_")]}
    # The gateway answers from the sources (the CPU default `ragd eval rag` measured best): the packaged
    # 135M model's answers to the fixture questions are often withheld by the output rails (it echoes its
    # instructions), and this module tests what crosses the processes, not that model.
    os.environ["RAGD_GENERATOR_BACKEND"] = "extractive"
    settings = _settings(tmp_path_factory.mktemp("topology"), private_redis=True, demo_corpus=FIXTURE_CORPUS)
    try:
        with Topology(settings) as running:
            yield running
    finally:
        os.environ.pop("RAGD_GENERATOR_BACKEND", None)
        os.environ.update(saved)


def _pids(topology: Topology) -> list[int]:
    return [proc.pid for proc in topology._procs.values()]


@pytest.mark.e2e
def test_a_streamed_answer_with_citations_crosses_the_processes(topology: Topology) -> None:
    client = openai.OpenAI(base_url=topology.urls["gateway"] + "/v1", api_key="none", max_retries=0, timeout=120)
    stream = client.chat.completions.create(
        model="ragd", messages=[{"role": "user", "content": "When was the Aurora Lighthouse built?"}],
        stream=True, max_tokens=32)
    text, citations = "", None
    for chunk in stream:
        extra = chunk.model_extra or {}
        citations = extra.get("citations") or citations
        text += "".join(choice.delta.content or "" for choice in chunk.choices)
    assert text.strip()
    assert citations and "aurora-lighthouse" in {Path(c["document_id"]).stem for c in citations}
    for name in ("retriever", "guardrails"):  # the gateway called each over HTTP
        families = text_string_to_metric_families(httpx.get(topology.urls[name] + "/metrics", timeout=10).text)
        served = [s for f in families if f.name == "ragd_requests" for s in f.samples
                  if s.name == "ragd_requests_total" and s.labels["method"] == "POST" and s.value > 0]
        assert served and all(s.labels["service"] == name for s in served), name


@pytest.mark.e2e
def test_the_gateway_dependency_view_sees_every_piece_up(topology: Topology) -> None:
    response = httpx.get(topology.urls["gateway"] + "/ready", params={"deep": "1"}, timeout=30)
    assert response.status_code == 200, response.text
    deps = response.json()["dependencies"]
    assert {name: d["state"] for name, d in deps.items()} == {
        "retriever": "up", "guardrails": "up", "generator": "up", "redis": "up", "chroma": "up"}
    assert deps["retriever"]["mode"] == "http" and deps["chroma"]["mode"] == "http"


@pytest.mark.e2e
def test_every_metric_a_dashboard_or_alert_uses_is_exported(topology: Topology) -> None:
    exported: set[str] = set()
    for name in ("gateway", "retriever", "guardrails", "generator"):
        response = httpx.get(topology.urls[name] + "/metrics", timeout=10)
        assert response.status_code == 200, name
        exported |= exported_names(response.text)
    missing = used_names() - exported - ALWAYS_AVAILABLE
    assert not missing, f"used in deploy/ but exported by no service: {sorted(missing)}"


@pytest.mark.e2e
def test_stop_leaves_no_process_behind(tmp_path: Path, clean_env: None) -> None:
    topology = Topology(_settings(tmp_path, private_redis=True))
    pieces = topology.pieces()
    topology.log_dir.mkdir(parents=True)
    for piece in pieces[:2]:  # the stores: quick to start, and each a process group of its own
        topology._spawn(piece)
        topology._wait_ready(piece)
    pids = _pids(topology)
    topology.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)


@pytest.mark.slow
@pytest.mark.e2e
def test_ragd_up_stops_every_piece_on_sigterm(tmp_path: Path) -> None:
    base = free_base_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    up = subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--base-port", str(base), "--data-dir",
                           str(tmp_path / "up"), "--private-redis"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    assert up.stdout is not None
    lines = []
    for line in up.stdout:
        lines.append(line)
        if "Ctrl-C stops them all" in line:
            break
    assert any(f"http://127.0.0.1:{base}" in line for line in lines), "".join(lines)
    up.terminate()
    assert up.wait(timeout=60) == 0
    time.sleep(0.5)
    assert all(_port_free(base + offset) for offset in PORT_OFFSETS.values())


def test_a_missing_redis_server_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server to be found
    topology = Topology(_settings(tmp_path, private_redis=True))
    with pytest.raises(TopologyError, match="redis-server"):
        topology.start()
    assert topology.exited() == {}


def test_pieces_die_with_a_killed_parent(tmp_path: Path) -> None:
    """Even SIGKILL of the process that started them (no chance to clean up) leaves no orphan."""
    script = f"""
import sys, time
from pathlib import Path
from lab.topology import Topology, TopologySettings
t = Topology(TopologySettings(base_port={free_base_port()}, data_dir=Path({str(tmp_path)!r}), private_redis=True))
redis = t.pieces()[0]
t.log_dir.mkdir(parents=True)
t._spawn(redis)
t._wait_ready(redis)
print(t._procs["redis"].pid, flush=True)
time.sleep(60)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # alive while its parent is
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, 9)
    raise AssertionError("redis-server outlived the process that started it")
