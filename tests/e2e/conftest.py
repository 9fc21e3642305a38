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
import openai
import pytest

from lab.topology import child_setup

FIXTURE_CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "e2e_corpus"
STARTUP_TIMEOUT_S = 300
# the fixture corpus covers it (the README asks the demo corpus about reciprocal rank fusion)
COVERED_QUESTION = "When was the Aurora Lighthouse built?"


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
                               env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, preexec_fn=child_setup())
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


def ask_like_the_readme(server: Server, max_tokens: int = 16) -> tuple[str, list[dict[str, object]]]:
    """The README's first example (official client, ``api_key="none"``, model ``ragd``, streamed), asking a
    question the fixture corpus covers, with a bounded ``max_tokens`` so the CPU model answers within the
    request deadline on a busy machine: the answer's text and its citations."""
    client = openai.OpenAI(base_url=server.openai_base, api_key="none", max_retries=0, timeout=180)
    stream = client.chat.completions.create(model="ragd", stream=True, max_tokens=max_tokens,
                                            messages=[{"role": "user", "content": COVERED_QUESTION}])
    text, citations = "", []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if (chunk.model_extra or {}).get("citations"):
            citations = chunk.model_extra["citations"]  # type: ignore[index]
    return text, citations


class RedisProcess:
    """A private redis-server on a free port (no persistence), to kill and restart at will."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            ping = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True)
            if ping.stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


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
