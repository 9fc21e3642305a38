"""Stored keys through the gateway app in process: the admin API, the ``ragd keys`` command writing
to the same store, open mode that no request can switch off, and the audit counters on /metrics.

The app runs with the real retriever (Chroma and BM25 on the test's data dir) and each real key
store; no chat route is called, so no generator or guardrails are started.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.auth import AuthConfigError
from gateway.components import Components
from gateway.keystore import hash_key
from gateway.settings import GatewaySettings
from retriever.service import LocalRetriever
from retriever.settings import RetrieverSettings
from services.cli import main as ragd
from services.epochs import MemoryEpochStore
from tests.keys.conftest import SHARED_REDIS

SettingsFactory = Callable[..., GatewaySettings]


@asynccontextmanager
async def retriever_only(settings: GatewaySettings) -> AsyncIterator[Components]:
    epochs = MemoryEpochStore()
    retriever = LocalRetriever(RetrieverSettings(data_dir=settings.data_dir / "retriever", redis_url=None), epochs)
    yield Components(retriever=retriever, corpus=retriever, generator=None, guard=None,  # type: ignore[arg-type]
                     epochs=epochs)
    await retriever.aclose()


@pytest.fixture(params=["file", "redis"])
def make_settings(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str) -> SettingsFactory:
    """Gateway settings on this test's data dir and key store (the shared Redis under a private prefix)."""
    store: dict[str, Any] = ({"redis_url": SHARED_REDIS, "key_store_prefix": redis_prefix, "key_store": "redis"}
                             if request.param == "redis" else {"key_store": "file"})

    def make(**overrides: Any) -> GatewaySettings:
        return GatewaySettings(**{"data_dir": tmp_path / "data", **store, **overrides})

    return make


def where(settings: GatewaySettings) -> list[str]:
    """The ``ragd keys`` options naming the settings' store (never the shared default prefix)."""
    return ["--data-dir", str(settings.data_dir), "--redis-url", settings.redis_url or "",
            "--prefix", settings.key_store_prefix, "--store", settings.key_store]


def cli(settings: GatewaySettings, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """``ragd keys ...`` against the settings' store; its JSON output."""
    capsys.readouterr()
    assert ragd(["keys", *argv, *where(settings), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def client_of() -> Iterator[Callable[[GatewaySettings], TestClient]]:
    opened: list[TestClient] = []

    def start(settings: GatewaySettings) -> TestClient:
        client = TestClient(create_app(settings, components_factory=retriever_only))
        client.__enter__()
        opened.append(client)
        return client

    yield start
    for client in opened:
        client.__exit__(None, None, None)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_open_mode_refuses_every_admin_route_and_keeps_serving(
        make_settings: SettingsFactory, client_of: Callable[[GatewaySettings], TestClient]) -> None:
    client = client_of(make_settings())
    attempts = [client.post("/v1/admin/keys", json={"tenant": "x", "role": "admin"}),
                client.get("/v1/admin/keys"), client.get("/v1/admin/keys/key-0000000000000000"),
                client.post("/v1/admin/keys/key-0000000000000000/revoke"),
                client.post("/v1/admin/keys/key-0000000000000000/rotate")]
    for response in attempts:
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["type"] == "permission_error" and error["code"] == "open_mode"
        assert "ragd keys create" in error["message"] and "RAGD_GATEWAY_AUTH" in error["message"]
    for headers in ({}, bearer("none"), bearer("rk-whatever")):  # the README's client sends api_key="none"
        models = client.get("/v1/models", headers=headers)
        assert models.status_code == 200 and "ragd" in {m["id"] for m in models.json()["data"]}


def test_a_key_made_by_the_cli_while_open_changes_nothing_until_restart(
        make_settings: SettingsFactory, client_of: Callable[[GatewaySettings], TestClient],
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings()
    running = client_of(settings)
    admin = cli(settings, capsys, "create", "--tenant", "ops", "--role", "admin")
    assert running.get("/v1/models").status_code == 200  # still open: the README client keeps working
    refused = running.get("/v1/admin/keys", headers=bearer(admin["key"]))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "open_mode"
    running.__exit__(None, None, None)
    restarted = client_of(settings)  # auto: the store holds an active key now
    assert restarted.get("/v1/models").status_code == 401
    listed = restarted.get("/v1/admin/keys", headers=bearer(admin["key"]))
    assert listed.status_code == 200 and [k["key_id"] for k in listed.json()["data"]] == [admin["key_id"]]


def test_the_admin_api_creates_lists_rotates_and_revokes(
        make_settings: SettingsFactory, client_of: Callable[[GatewaySettings], TestClient],
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(auth="keys")
    admin_key = cli(settings, capsys, "create", "--tenant", "ops", "--role", "admin", "--name", "bootstrap")["key"]
    client = client_of(settings)
    assert client.get("/v1/models").status_code == 401
    created = client.post("/v1/admin/keys", headers=bearer(admin_key),
                          json={"tenant": "acme", "name": "app", "rpm": 100, "tpm": 5000})
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["key"].startswith("rk-") and user["state"] == "active" and user["rpm"] == 100
    assert "key_sha256" not in user
    assert client.post("/v1/collections", json={"name": "docs"}, headers=bearer(user["key"])).status_code == 201
    models = client.get("/v1/models", headers=bearer(user["key"])).json()
    assert "ragd:docs" in {m["id"] for m in models["data"]}  # the key's own tenant
    forbidden = client.get("/v1/admin/keys", headers=bearer(user["key"]))
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "insufficient_permissions"

    listing = client.get("/v1/admin/keys", headers=bearer(admin_key))
    assert listing.status_code == 200
    assert {k["tenant"] for k in listing.json()["data"]} == {"ops", "acme"}
    for secret in (admin_key, user["key"]):
        assert secret not in listing.text and hash_key(secret) not in listing.text
    only_acme = client.get("/v1/admin/keys", params={"tenant": "acme"}, headers=bearer(admin_key)).json()
    assert [k["key_id"] for k in only_acme["data"]] == [user["key_id"]]
    one = client.get(f"/v1/admin/keys/{user['key_id']}", headers=bearer(admin_key))
    assert one.status_code == 200 and one.json()["name"] == "app" and "key" not in one.json()

    rotated = client.post(f"/v1/admin/keys/{user['key_id']}/rotate", headers=bearer(admin_key))
    assert rotated.status_code == 200 and rotated.json()["key_id"] == user["key_id"]
    assert client.get("/v1/models", headers=bearer(user["key"])).status_code == 401
    new_key = rotated.json()["key"]
    assert client.get("/v1/models", headers=bearer(new_key)).status_code == 200

    revoked = client.post(f"/v1/admin/keys/{user['key_id']}/revoke", headers=bearer(admin_key))
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    gone = client.get("/v1/models", headers=bearer(new_key))  # at once on the replica that revoked it
    assert gone.status_code == 401 and "revoked" in gone.json()["error"]["message"]
    again = client.post(f"/v1/admin/keys/{user['key_id']}/rotate", headers=bearer(admin_key))
    assert again.status_code == 409 and again.json()["error"]["type"] == "invalid_request_error"
    unknown = client.post("/v1/admin/keys/key-0000000000000000/revoke", headers=bearer(admin_key))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"

    metrics = client.get("/metrics").text
    assert 'ragd_key_events_total{event="created"}' in metrics
    assert 'ragd_key_events_total{event="rotated"}' in metrics
    assert 'ragd_auth_failures_total{reason="revoked"}' in metrics
    for secret in (admin_key, new_key):
        assert secret not in metrics


@pytest.mark.parametrize("body", [
    {"tenant": "has space"}, {"tenant": ""}, {"tenant": "acme", "role": "root"}, {"tenant": "acme", "rpm": -1},
    {"tenant": "acme", "expires_in_s": 0}, {"role": "user"}, [],
])
def test_bad_create_bodies_are_400s_beside_a_valid_one(
        make_settings: SettingsFactory, client_of: Callable[[GatewaySettings], TestClient],
        capsys: pytest.CaptureFixture[str], body: Any) -> None:
    settings = make_settings(auth="keys")
    admin_key = cli(settings, capsys, "create", "--tenant", "ops", "--role", "admin")["key"]
    client = client_of(settings)
    bad = client.post("/v1/admin/keys", json=body, headers=bearer(admin_key))
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    good = client.post("/v1/admin/keys", json={"tenant": "acme"}, headers=bearer(admin_key))
    assert good.status_code == 201


def test_an_expired_key_is_refused(make_settings: SettingsFactory,
                                   client_of: Callable[[GatewaySettings], TestClient],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(auth="keys")
    brief = cli(settings, capsys, "create", "--tenant", "acme", "--expires-in", "1")
    lasting = cli(settings, capsys, "create", "--tenant", "acme", "--expires-in", "1h")
    client = client_of(settings)
    assert client.get("/v1/models", headers=bearer(brief["key"])).status_code == 200
    time.sleep(max(0.0, brief["expires_at"] + 1.05 - time.time()))
    expired = client.get("/v1/models", headers=bearer(brief["key"]))
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    assert client.get("/v1/models", headers=bearer(lasting["key"])).status_code == 200


def test_the_cli_lists_revokes_and_rotates(make_settings: SettingsFactory, capsys: pytest.CaptureFixture[str],
                                           client_of: Callable[[GatewaySettings], TestClient]) -> None:
    settings = make_settings(auth="keys")
    first = cli(settings, capsys, "create", "--tenant", "acme", "--rpm", "10")
    second = cli(settings, capsys, "create", "--tenant", "beta", "--role", "admin")
    listed = cli(settings, capsys, "list")
    assert [(k["key_id"], k["state"], k["rpm"]) for k in listed] == [(first["key_id"], "active", 10),
                                                                     (second["key_id"], "active", None)]
    assert first["key"] not in json.dumps(listed) and hash_key(first["key"]) not in json.dumps(listed)
    rotated = cli(settings, capsys, "rotate", first["key_id"])
    assert rotated["key_id"] == first["key_id"] and rotated["key"] != first["key"]
    assert cli(settings, capsys, "revoke", second["key_id"])["state"] == "revoked"
    assert [k["tenant"] for k in cli(settings, capsys, "list", "--tenant", "beta")] == ["beta"]
    client = client_of(settings)
    assert client.get("/v1/models", headers=bearer(second["key"])).status_code == 401
    assert client.get("/v1/models", headers=bearer(first["key"])).status_code == 401
    assert client.get("/v1/models", headers=bearer(rotated["key"])).status_code == 200
    capsys.readouterr()
    assert ragd(["keys", "revoke", "key-0000000000000000", *where(settings)]) == 1
    assert "No API key" in capsys.readouterr().err
    assert ragd(["keys", "create", "--tenant", "acme", *where(settings)]) == 0  # plain output: the key alone on stdout
    out = capsys.readouterr()
    assert out.out.strip().startswith("rk-") and len(out.out.strip().splitlines()) == 1
    assert "shown once" in out.err


def test_an_open_gateway_refuses_a_public_interface(make_settings: SettingsFactory,
                                                    client_of: Callable[[GatewaySettings], TestClient]) -> None:
    with pytest.raises(AuthConfigError, match=r"refusing to listen on 0\.0\.0\.0"):
        client_of(make_settings(host="0.0.0.0"))
    keyed = client_of(make_settings(host="0.0.0.0", auth="keys"))  # the control: keyed mode may listen anywhere
    assert keyed.get("/v1/models").status_code == 401
