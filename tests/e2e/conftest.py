"""One real embedded ragd server (a subprocess on a free port) shared by the end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

FIXTURE_CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "e2e_corpus"
STARTUP_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.base_url = base_url
        self.process = process
        self.log = log

    @property
    def openai_base(self) -> str:
        return self.base_url + "/v1"


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    env.update({"RAGD_DATA_DIR": str(tmp / "data"), "RAGD_GATEWAY_DEMO_CORPUS": str(FIXTURE_CORPUS),
                "PYTHONUNBUFFERED": "1", **(extra_env or {})})
    log = tmp / "server.log"
    process = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "--port", str(port)],
                               env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("ragd serve exited:\n" + log.read_text(errors="replace")[-4000:])
        try:
            if httpx.get(base + "/ready", timeout=2).status_code == 200:
                return Server(base, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(process)
    raise RuntimeError("ragd serve did not become ready:\n" + log.read_text(errors="replace")[-4000:])


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ragd-e2e")
    srv = start_server(tmp)
    yield srv
    stop_server(srv.process)


ADMIN_KEY = "sk-routes-admin-0123456789abcdef"
LIMITED_TENANT = "uploads"
LIMITED_ENV = {"RAGD_GATEWAY_API_KEYS": f"{ADMIN_KEY}:{LIMITED_TENANT}:admin", "RAGD_GATEWAY_DEMO_CORPUS": "",
               "RAGD_GATEWAY_MAX_UPLOAD_BYTES": "200000", "RAGD_GATEWAY_MAX_DOCUMENTS_PER_REQUEST": "4"}


@pytest.fixture(scope="session")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with an admin API key (tenant ``uploads``), uploads of at most 200 kB and 4 files."""
    tmp = tmp_path_factory.mktemp("ragd-limited")
    srv = start_server(tmp, LIMITED_ENV)
    yield srv
    stop_server(srv.process)
