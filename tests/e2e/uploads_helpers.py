"""Helpers of the upload tests: the admin-keyed ``limited`` server's collections, observed whole, and
uploads through the real curl binary."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.conftest import ADMIN_KEY, Server

AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


@dataclass(frozen=True)
class CollectionState:
    """Everything a refused upload must leave as it was."""

    documents: int
    chunks: int
    epoch: str
    hits: tuple[str, ...]


def new_collection(server: Server, prefix: str = "up") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    response = httpx.post(server.openai_base + "/collections", json={"name": name}, headers=AUTH, timeout=60)
    assert response.status_code == 201, response.text
    return name


def state(server: Server, name: str, query: str = "ferry harbour observatory") -> CollectionState:
    listed = httpx.get(server.openai_base + "/collections", headers=AUTH, timeout=60).json()["data"]
    info = next(c for c in listed if c["name"] == name)
    found = httpx.post(server.openai_base + f"/collections/{name}/search", json={"query": query, "top_k": 10},
                       headers=AUTH, timeout=120)
    assert found.status_code == 200, found.text
    return CollectionState(info["documents"], info["chunks"], info["epoch"],
                           tuple(c["chunk_id"] for c in found.json()["data"]))


def curl_upload(server: Server, name: str, *fields: str) -> tuple[int, dict[str, Any]]:
    """``curl -F <field> ...`` against the upload route; (status, JSON body)."""
    argv = ["curl", "-sS", "--max-time", "300", "-w", "\n%{http_code}", "-H", f"authorization: {AUTH['authorization']}"]
    for field in fields:
        argv += ["-F", field]
    argv.append(server.openai_base + f"/collections/{name}/files")
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=320)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def assert_openai_error(body: dict[str, Any], code: str | None, *, mentions: str = "") -> None:
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, body
    assert error["message"] and error["type"] == "invalid_request_error", body
    if code is not None:
        assert error["code"] == code, body
    assert mentions in error["message"], body
