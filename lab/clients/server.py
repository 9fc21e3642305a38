"""The ragd server the client checks run against: ``ragd serve --demo`` (what ``make run`` starts) on a
free port, with its own data folder and its JSON log in a file the checks read afterwards.

Standard library only: the client checks import it from inside their own virtualenvs, where ragd's
dependencies are not installed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RagdServer", "free_port", "log_records", "ragd_server", "wait_http"]

STARTUP_TIMEOUT_S = 600.0


def free_port() -> int:
    """A TCP port nothing listens on now (never 8000: the machine's shared default)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port != 8000:
            return port


def wait_http(url: str, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None,
              log: Path | None = None) -> None:
    """Wait until ``url`` answers 200; fail early when ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log is not None else ""
            raise RuntimeError(f"the process serving {url} exited ({process.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s")


def stop_process(process: subprocess.Popen[bytes], *, grace_s: float = 20.0) -> None:
    """SIGTERM the process group this harness started, then SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_s)


@dataclass(frozen=True)
class RagdServer:
    """Where a running ragd answers, and where its log is."""

    base_url: str
    log_path: Path

    @property
    def openai_base(self) -> str:
        return self.base_url + "/v1"

    def as_env(self) -> dict[str, str]:
        """How the runner tells a client check where the server is."""
        return {"RAGD_CLIENTS_BASE_URL": self.base_url, "RAGD_CLIENTS_LOG": str(self.log_path)}

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RagdServer:
        return cls(env["RAGD_CLIENTS_BASE_URL"], Path(env["RAGD_CLIENTS_LOG"]))


def log_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of ragd's log (other lines, such as the start banner, are skipped)."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


@contextmanager
def ragd_server(python: str, repo: Path, workdir: Path, *, port: int | None = None,
                extra_env: Mapping[str, str] | None = None) -> Iterator[RagdServer]:
    """``ragd serve --demo`` in its own process group, its data in ``workdir/data``; stopped on exit.

    Question and answer texts are logged (``RAGD_LOG_TEXT``), so the checks can tell which requests
    were a frontend's task requests and what happened to them.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    env.update({"RAGD_DATA_DIR": str(workdir / "data"), "RAGD_LOG_TEXT": "true", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(repo), **(extra_env or {})})
    log = workdir / "ragd.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([python, "-m", "services.cli", "serve", "--demo", "--host", "127.0.0.1",
                                    "--port", str(port)], cwd=repo, env=env, stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/ready", timeout_s=STARTUP_TIMEOUT_S, process=process, log=log)
        yield RagdServer(base, log)
    finally:
        stop_process(process)
