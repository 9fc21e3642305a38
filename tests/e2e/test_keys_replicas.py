"""Stored API keys across two gateway replicas: two ``ragd serve`` processes sharing one (private)
Redis, driven over real HTTP by the official openai client. The first admin key comes from
``ragd keys create`` run as its own process before either server starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import RedisProcess, Server, start_server, stop_server
from tests.e2e.route_registry import covers

pytestmark = pytest.mark.e2e

# a revocation must reach every replica within this many seconds (the contract)
PROPAGATION_S = 2.0


@dataclass
class Replicas:
    a: Server
    b: Server
    redis: RedisProcess
    admin_key: str
    env: dict[str, str]
    tmp: Path

    def both(self) -> tuple[Server, Server]:
        return self.a, self.b


def _start(where: Path, env: dict[str, str]) -> Server:
    where.mkdir(parents=True, exist_ok=True)
    return start_server(where, env)


def _cli_env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    return {**env, "RAGD_REDIS_URL": redis_url}


def _bootstrap_admin(redis_url: str) -> str:
    """``ragd keys create`` as an operator runs it on the gateway's host: no server, same settings."""
    done = subprocess.run([sys.executable, "-m", "services.cli", "keys", "create", "--tenant", "ops", "--role",
                           "admin", "--name", "bootstrap", "--json"], env=_cli_env(redis_url), capture_output=True,
                          timeout=120, check=True)
    created = json.loads(done.stdout)
    assert created["role"] == "admin" and created["state"] == "active"
    key: str = created["key"]
    assert key not in done.stderr.decode()  # the audit line on stderr names the key id, never the key
    return key


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    redis = RedisProcess(tmp_path_factory.mktemp("keys-redis"))
    redis.start()
    tmp = tmp_path_factory.mktemp("keys-replicas")
    # auth stays at its default (auto): the store's admin key makes both replicas keyed
    env = {"RAGD_REDIS_URL": redis.url, "RAGD_GATEWAY_DEMO_CORPUS": ""}
    started: list[Server] = []
    try:
        admin_key = _bootstrap_admin(redis.url)
        for name in ("a", "b"):  # one after the other: a first start converts model files both would write
            started.append(_start(tmp / name, env))
        group = Replicas(started[0], started[1], redis, admin_key, env, tmp)
        yield group
        started[1] = group.b  # a test may restart a replica
    finally:
        for server in started:
            stop_server(server.process)
        redis.kill()


def _client(server: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base, api_key=key, max_retries=0, timeout=120)


def _admin(server: Server, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, server.openai_base + "/admin/keys" + path, json=body, timeout=30,
                         headers={"authorization": f"Bearer {key}"})


def _create(server: Server, admin_key: str, **body: Any) -> dict[str, Any]:
    response = _admin(server, admin_key, "POST", "", {"tenant": "acme", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _works(server: Server, key: str) -> bool:
    """True when the key lists the models; False on 401 (anything else fails the test)."""
    try:
        _client(server, key).models.list()
    except openai.AuthenticationError:
        return False
    return True


@covers("GET", "/v1/admin/keys")
@covers("GET", "/v1/admin/keys/{key_id}")
def test_a_key_created_on_one_replica_works_on_the_other(replicas: Replicas) -> None:
    assert not _works(replicas.a, "rk-not-a-key") and not _works(replicas.b, "rk-not-a-key")  # keyed, both
    created = _create(replicas.a, replicas.admin_key, name="app")
    assert _works(replicas.b, created["key"]) and _works(replicas.a, created["key"])
    client = _client(replicas.b, created["key"])
    assert len(client.embeddings.create(model="ragd-embed", input="harbor").data[0].embedding) == 384
    headers = {"authorization": f"Bearer {created['key']}"}  # each replica here has its own corpus: B's
    assert httpx.post(replicas.b.openai_base + "/collections", json={"name": "docs"}, headers=headers,
                      timeout=60).status_code == 201
    ingest = httpx.post(replicas.b.openai_base + "/collections/docs/documents", headers=headers, timeout=300,
                        json={"documents": [{"id": "harbor", "title": "Harbor",
                                             "text": "The Zentra harbor opens at six in the morning."}]})
    assert ingest.status_code == 200, ingest.text
    completion = client.chat.completions.create(
        model="ragd:docs", max_tokens=8, messages=[{"role": "user", "content": "When does the harbor open?"}])
    assert completion.object == "chat.completion" and completion.choices
    assert (completion.model_extra or {}).get("citations")
    listed = _admin(replicas.b, replicas.admin_key, "GET", "")
    assert created["key_id"] in {k["key_id"] for k in listed.json()["data"]}
    assert created["key"] not in listed.text
    one = _admin(replicas.a, replicas.admin_key, "GET", f"/{created['key_id']}")
    assert one.status_code == 200 and one.json()["key_id"] == created["key_id"] and created["key"] not in one.text


@covers("POST", "/v1/admin/keys/{key_id}/revoke")
def test_a_revoked_key_fails_on_both_within_two_seconds(replicas: Replicas) -> None:
    doomed = _create(replicas.b, replicas.admin_key)
    control = _create(replicas.b, replicas.admin_key)
    for server in replicas.both():  # both replicas have looked the key up (and may hold it briefly)
        assert _works(server, doomed["key"])
    revoked = _admin(replicas.a, replicas.admin_key, "POST", f"/{doomed['key_id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    at = time.monotonic()
    assert not _works(replicas.a, doomed["key"])  # the replica that revoked it: at once
    time.sleep(max(0.0, at + PROPAGATION_S - time.monotonic()))
    for server in replicas.both():
        assert not _works(server, doomed["key"])
        assert _works(server, control["key"])


@covers("POST", "/v1/admin/keys/{key_id}/rotate")
def test_a_rotated_key_changes_on_both(replicas: Replicas) -> None:
    old = _create(replicas.a, replicas.admin_key)
    assert _works(replicas.b, old["key"])
    rotated = _admin(replicas.b, replicas.admin_key, "POST", f"/{old['key_id']}/rotate")
    assert rotated.status_code == 200 and rotated.json()["key_id"] == old["key_id"]
    time.sleep(PROPAGATION_S)
    for server in replicas.both():
        assert not _works(server, old["key"])
        assert _works(server, rotated.json()["key"])


def test_an_expired_key_fails_on_both(replicas: Replicas) -> None:
    brief = _create(replicas.a, replicas.admin_key, expires_in_s=2)
    lasting = _create(replicas.a, replicas.admin_key, expires_in_s=3600)
    assert _works(replicas.b, brief["key"])
    time.sleep(max(0.0, brief["expires_at"] + 1 + PROPAGATION_S - time.time()))
    for server in replicas.both():
        response = httpx.get(server.openai_base + "/models", timeout=30,
                             headers={"authorization": f"Bearer {brief['key']}"})
        assert response.status_code == 401 and "expired" in response.json()["error"]["message"]
        assert _works(server, lasting["key"])


def test_a_keys_own_rate_limit_is_shared_by_the_replicas(replicas: Replicas) -> None:
    if 60 - time.time() % 60 < 15:  # the limiter counts per clock minute: start in a fresh one
        time.sleep(60 - time.time() % 60 + 0.5)
    limited = _create(replicas.a, replicas.admin_key, rpm=2)
    body = {"model": "ragd-embed", "input": "harbor"}
    statuses = [httpx.post(server.openai_base + "/embeddings", json=body, timeout=120,
                           headers={"authorization": f"Bearer {limited['key']}"}).status_code
                for server in (replicas.a, replicas.b, replicas.a)]
    assert statuses == [200, 200, 429]
    control = _create(replicas.a, replicas.admin_key)  # the gateway's limit (none here) for other keys
    assert httpx.post(replicas.b.openai_base + "/embeddings", json=body, timeout=120,
                      headers={"authorization": f"Bearer {control['key']}"}).status_code == 200


def test_key_events_and_refusals_are_logged_and_counted_without_keys(replicas: Replicas) -> None:
    created = _create(replicas.a, replicas.admin_key, name="audited")
    _admin(replicas.a, replicas.admin_key, "POST", f"/{created['key_id']}/revoke")
    assert not _works(replicas.a, created["key"])
    deadline = time.monotonic() + 10  # log lines are written by a writer thread
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not {"key_created", "key_revoked", "auth_failed"} <= {
            e.get("event") for e in events if e.get("key_id") == created["key_id"]}:
        time.sleep(0.2)
        events = [json.loads(line) for line in replicas.a.log.read_text(errors="replace").splitlines()
                  if line.startswith("{") and '"ragd.audit"' in line]
    mine = [e for e in events if e.get("key_id") == created["key_id"]]
    assert {e["event"] for e in mine} == {"key_created", "key_revoked", "auth_failed"}
    assert next(e for e in mine if e["event"] == "auth_failed")["reason"] == "revoked"
    metrics = httpx.get(replicas.a.base_url + "/metrics", timeout=10).text
    assert 'ragd_key_events_total{event="revoked"}' in metrics
    assert 'ragd_auth_failures_total{reason="revoked"}' in metrics
    for server in replicas.both():
        log = server.log.read_text(errors="replace")
        assert created["key"] not in log and replicas.admin_key not in log


def test_a_restarted_replica_keeps_every_key(replicas: Replicas) -> None:
    kept = _create(replicas.a, replicas.admin_key, name="kept")
    revoked = _create(replicas.a, replicas.admin_key, name="revoked")
    _admin(replicas.a, replicas.admin_key, "POST", f"/{revoked['key_id']}/revoke")
    stop_server(replicas.b.process)
    replicas.b = _start(replicas.tmp / "b-restarted", replicas.env)
    assert _works(replicas.b, kept["key"]) and _works(replicas.b, replicas.admin_key)
    assert not _works(replicas.b, revoked["key"])
    assert not _works(replicas.b, "none")  # still keyed: the README's key is refused here

