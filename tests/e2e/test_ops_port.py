"""The gateway's operator surface, over real HTTP: /metrics and the dependency view on the internal metrics
port only, and a shallow /ready that stays 200 while every dependency is down (so probes never take healthy
gateways out of rotation or restart them). The gateway runs distributed against ports nothing listens on,
and against the real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.settings import GatewaySettings
from lab.topology import child_setup
from tests.e2e.conftest import free_port, stop_server

pytestmark = pytest.mark.e2e
KEY = "sk-ops-test-key-0123456789"


@dataclass(frozen=True)
class OpsGateway:
    api: str
    ops: str


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsGateway]:
    tmp = tmp_path_factory.mktemp("ops")
    port, metrics_port = free_port(), free_port()
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    env.update({
        "RAGD_DATA_DIR": str(tmp / "data"), "PYTHONUNBUFFERED": "1",
        "RAGD_GATEWAY_API_KEYS": f"{KEY}:acme:user",
        "RAGD_GATEWAY_METRICS_PORT": str(metrics_port),
        "RAGD_GATEWAY_RETRIEVER_URL": dead[0], "RAGD_GATEWAY_GUARDRAILS_URL": dead[1],
        "RAGD_GATEWAY_GENERATOR_URL": dead[2] + "/v1",
        "RAGD_GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/0",
        "RAGD_CACHE_ENABLED": "false",
    })
    log = tmp / "gateway.log"
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "gateway", "--port", str(port)],
                               env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, preexec_fn=child_setup(),
                               cwd=Path(__file__).resolve().parents[2])
    api, ops = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")[-4000:]
            try:
                if httpx.get(api + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise AssertionError("the gateway did not become ready:\n" + log.read_text(errors="replace")[-4000:])
        yield OpsGateway(api, ops)
    finally:
        stop_server(process)


def test_shallow_ready_holds_while_every_dependency_is_down(gateway: OpsGateway) -> None:
    for base in (gateway.api, gateway.ops):
        response = httpx.get(base + "/ready", timeout=10)
        assert response.status_code == 200 and response.json()["ready"] is True
        assert "dependencies" not in response.json()


def test_the_deep_view_reports_each_dependency(gateway: OpsGateway) -> None:
    response = httpx.get(gateway.ops + "/ready", params={"deep": "1"}, timeout=20)
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body["service"] == "gateway"
    deps = body["dependencies"]
    assert set(deps) == {"retriever", "guardrails", "generator", "redis", "chroma"}
    assert {deps[n]["state"] for n in ("retriever", "guardrails", "generator")} == {"down"}
    assert deps["retriever"]["mode"] == "http" and deps["retriever"]["detail"] == "ConnectError"
    assert deps["redis"]["state"] == "up"  # the real Redis answers
    assert deps["chroma"]["state"] == "unknown"  # seen only through the retriever, which is down


def test_metrics_answer_on_the_internal_port_only(gateway: OpsGateway) -> None:
    internal = httpx.get(gateway.ops + "/metrics", timeout=10)
    assert internal.status_code == 200 and "ragd_requests_total" in internal.text
    public = httpx.get(gateway.api + "/metrics", timeout=10)
    assert public.status_code == 404
    assert public.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(gateway.api + "/ready", params={"deep": "1"}, timeout=10).status_code == 404


def test_the_internal_port_serves_nothing_but_operations(gateway: OpsGateway) -> None:
    assert httpx.get(gateway.api + "/openapi.json", timeout=10).status_code == 200  # control
    refused = httpx.get(gateway.ops + "/openapi.json", timeout=10)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    headers = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(gateway.ops + "/v1/models", headers=headers, timeout=10).status_code == 404
    assert httpx.get(gateway.ops + "/health", timeout=10).status_code == 200


@pytest.mark.parametrize(("host", "served"), [("127.0.0.1", True), ("0.0.0.0", False)])
def test_without_a_metrics_port_metrics_are_served_on_loopback_only(host: str, served: bool) -> None:
    app = create_app(GatewaySettings(host=host, api_keys=f"{KEY}:acme:user"))
    client = TestClient(app)  # no lifespan: these routes need no components
    assert client.get("/health").status_code == 200  # control: the app answers
    assert client.get("/metrics").status_code == (200 if served else 404)
    assert client.get("/ready", params={"deep": "1"}).status_code == (503 if served else 404)  # not started yet
