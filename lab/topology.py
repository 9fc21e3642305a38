"""``ragd up``: the compose topology as local processes, for machines without Docker and for tests.

Redis (a private ``redis-server`` when none answers), a Chroma server (``chroma run``), then the
generator, retriever and guardrails (``ragd serve <piece>``), then the gateway. Every piece is a
child process in its own process group with the same ``RAGD_*`` settings docker-compose.yml gives
its container, pointed at loopback ports instead of service names. ``Topology`` is the reusable
API (a context manager); ``add_up`` registers the command.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PORT_OFFSETS", "Piece", "Topology", "TopologyError", "TopologySettings", "add_up", "child_setup",
           "piece_environment"]

# The same ports as docker-compose.yml and deploy/k8s, shifted by --base-port - 8000.
PORT_OFFSETS: dict[str, int] = {
    "gateway": 0, "chroma": 1, "retriever": 2, "generator": 3, "guardrails": 4, "redis": 5,
}
_PR_SET_PDEATHSIG = 1


class TopologySettings(BaseSettings):
    """How ``ragd up`` lays out the local topology. Env prefix ``RAGD_UP_``."""

    model_config = SettingsConfigDict(env_prefix="RAGD_UP_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Interface every piece listens on.")
    base_port: int = Field(8000, ge=1024, le=65000, description="Gateway port; the others follow PORT_OFFSETS.")
    data_dir: Path = Field(Path(".ragd") / "up", description="State of every piece (Chroma, BM25) and the logs.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis to use if it answers; else a private one.")
    private_redis: bool = Field(False, description="Always start a private redis-server (isolated state).")
    demo_corpus: Path | None = Field(None, description="Folder the gateway ingests on first start.")
    generator_url: str | None = Field(
        None, description="OpenAI-compatible base URL (e.g. a vLLM server, .../v1) used instead of a local llama.cpp.")
    generator_model: str = Field("ragd-llm", description="Model name the generator serves (vLLM --served-model-name).")
    startup_timeout_s: float = Field(300.0, gt=0, description="How long each piece may take to become ready, s.")
    stop_timeout_s: float = Field(15.0, gt=0, description="Grace after SIGTERM before SIGKILL, seconds.")


class TopologyError(RuntimeError):
    """A piece exited or did not become ready; the message carries the tail of its log."""


@dataclass(frozen=True)
class Piece:
    """One process of the topology and how to tell it is ready."""

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    port: int
    ready_path: str | None  # None: answering a Redis PING is ready

    def url(self, host: str) -> str:
        return f"redis://{host}:{self.port}/0" if self.ready_path is None else f"http://{host}:{self.port}"


def piece_environment(urls: Mapping[str, str], data_dir: Path, log_level: str = "INFO",
                      generator_model: str = "ragd-llm") -> dict[str, dict[str, str]]:
    """The ``RAGD_*`` settings of each ragd piece: the names docker-compose.yml sets, local values.
    ``urls["generator"]`` is the OpenAI base URL (ending in /v1)."""
    return {
        "gateway": {
            "RAGD_GATEWAY_RETRIEVER_URL": urls["retriever"],
            "RAGD_GATEWAY_GUARDRAILS_URL": urls["guardrails"],
            "RAGD_GATEWAY_GENERATOR_URL": urls["generator"],
            "RAGD_GATEWAY_GENERATOR_MODEL": generator_model,
            # answers by extraction in both languages; the model rewrites follow-ups (as docker-compose.yml)
            "RAGD_GENERATOR_BACKEND": os.environ.get("RAGD_GENERATOR_BACKEND", "by-language"),
            "RAGD_GENERATOR_LANGUAGE_BACKENDS": '{"en": "extractive", "ko": "extractive"}',
            "RAGD_GATEWAY_REDIS_URL": urls["redis"],
            "RAGD_GATEWAY_DATA_DIR": str(data_dir / "gateway"),
            "RAGD_GATEWAY_LOG_LEVEL": log_level,
        },
        "retriever": {
            "RAGD_RETRIEVER_CHROMA_MODE": "http",
            "RAGD_RETRIEVER_CHROMA_URL": urls["chroma"],
            "RAGD_RETRIEVER_REDIS_URL": urls["redis"],
            "RAGD_RETRIEVER_DATA_DIR": str(data_dir / "retriever"),
            "RAGD_RETRIEVER_LOG_LEVEL": log_level,
        },
        "guardrails": {
            "RAGD_GUARDRAILS_DATA_DIR": str(data_dir / "guardrails"),
            "RAGD_GUARDRAILS_LOG_LEVEL": log_level,
        },
        "generator": {
            "RAGD_GENERATOR_LOG_LEVEL": log_level,
        },
    }


def redis_answers(url: str, timeout_s: float = 0.5) -> bool:
    """True when a Redis at ``url`` answers PING (no auth, plain TCP)."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _chroma_command() -> str:
    beside = Path(sys.executable).with_name("chroma")
    return str(beside) if beside.exists() else "chroma"


def child_setup() -> Callable[[], None]:
    """What a child runs between fork and exec: its own process group (so a stop reaches its own
    children too) and, on Linux, SIGTERM when the process that started it dies (no orphans even
    if ``ragd up`` is killed with SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def setup() -> None:
        os.setsid()
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


class Topology:
    """The local multi-process twin of docker-compose.yml. ``with Topology(settings) as t: t.urls``."""

    def __init__(self, settings: TopologySettings | None = None, *, extra_env: Mapping[str, str] | None = None):
        self.settings = settings or TopologySettings()
        self.data_dir = self.settings.data_dir.resolve()
        self.log_dir = self.data_dir / "logs"
        self._extra_env = dict(extra_env or {})
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._child_setup = child_setup()
        self.urls: dict[str, str] = {}
        self._pieces: dict[str, Piece] = {}

    # ------------------------------------------------------------------ layout

    def _port(self, name: str) -> int:
        return self.settings.base_port + PORT_OFFSETS[name]

    def pieces(self) -> list[Piece]:
        """Every process to start, in start order (Redis only when a private one is needed)."""
        host, py = self.settings.host, sys.executable
        ports = {name: self._port(name) for name in PORT_OFFSETS}
        redis_url = self.settings.redis_url
        private_redis = self.settings.private_redis or not redis_answers(redis_url)
        if private_redis:
            redis_url = f"redis://{host}:{ports['redis']}/0"
        urls = {name: f"http://{host}:{port}" for name, port in ports.items() if name != "redis"}
        urls["redis"] = redis_url
        external_generator = self.settings.generator_url
        urls["generator"] = external_generator or urls["generator"] + "/v1"
        envs = piece_environment(urls, self.data_dir, os.environ.get("RAGD_LOG_LEVEL", "INFO"),
                                 self.settings.generator_model)
        if self.settings.demo_corpus is not None:
            envs["gateway"]["RAGD_GATEWAY_DEMO_CORPUS"] = str(self.settings.demo_corpus.resolve())
        pieces: list[Piece] = []
        if private_redis:
            pieces.append(Piece("redis", ("redis-server", "--bind", host, "--port", str(ports["redis"]),
                                          "--save", "", "--appendonly", "no"), {}, ports["redis"], None))
        pieces.append(Piece("chroma", (_chroma_command(), "run", "--path", str(self.data_dir / "chroma"),
                                       "--host", host, "--port", str(ports["chroma"])),
                            {"ANONYMIZED_TELEMETRY": "False"}, ports["chroma"], "/api/v2/heartbeat"))
        local = ("retriever", "guardrails", "gateway") if external_generator else (
            "generator", "retriever", "guardrails", "gateway")
        for name in local:
            ready = "/health" if name == "generator" else "/ready"
            command = (py, "-m", "services.cli", "serve", name, "--host", host, "--port", str(ports[name]))
            pieces.append(Piece(name, command, envs[name], ports[name], ready))
        self.urls = {p.name: p.url(host) for p in pieces}
        self.urls.setdefault("redis", redis_url)
        if external_generator:
            self.urls["generator"] = external_generator
        return pieces

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> dict[str, str]:
        """Start every piece and wait until each is ready; on any failure stop what started and raise."""
        pieces = self.pieces()
        self._pieces = {p.name: p for p in pieces}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Stores first, then the three back pieces together (they load models in parallel), then the gateway.
        waves = [[p for p in pieces if p.name in ("redis", "chroma")],
                 [p for p in pieces if p.name in ("generator", "retriever", "guardrails")],
                 [p for p in pieces if p.name == "gateway"]]
        try:
            for wave in waves:
                for piece in wave:
                    self._spawn(piece)
                for piece in wave:
                    self._wait_ready(piece)
        except BaseException:
            self.stop()
            raise
        return dict(self.urls)

    def _spawn(self, piece: Piece) -> None:
        self._check_port_free(piece)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_UP_")}
        env.update({"PYTHONUNBUFFERED": "1", **piece.env, **self._extra_env})
        log = (self.log_dir / f"{piece.name}.log").open("ab")
        try:
            self._procs[piece.name] = subprocess.Popen(
                piece.command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=self._child_setup)
        except FileNotFoundError as exc:
            hint = " (install redis-server, or point RAGD_UP_REDIS_URL at a Redis)" if piece.name == "redis" else ""
            raise TopologyError(f"{piece.name}: cannot run {piece.command[0]!r}{hint}") from exc
        finally:
            log.close()

    def _check_port_free(self, piece: Piece) -> None:
        with socket.socket() as sock:
            if sock.connect_ex((self.settings.host, piece.port)) == 0:
                raise TopologyError(f"{piece.name}: port {piece.port} is already in use (try --base-port).")

    def _wait_ready(self, piece: Piece) -> None:
        proc = self._procs[piece.name]
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise TopologyError(f"{piece.name} exited with code {proc.returncode}:\n{self.log_tail(piece.name)}")
            if self._is_ready(piece):
                return
            time.sleep(0.25)
        raise TopologyError(f"{piece.name} was not ready within {self.settings.startup_timeout_s:.0f} s:\n"
                            f"{self.log_tail(piece.name)}")

    def _is_ready(self, piece: Piece) -> bool:
        if piece.ready_path is None:
            return redis_answers(piece.url(self.settings.host))
        try:
            response = httpx.get(piece.url(self.settings.host) + piece.ready_path, timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def kill(self, name: str) -> None:
        """SIGKILL one piece (fault injection); :meth:`restart` brings it back."""
        proc = self._procs.pop(name)
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=10)

    def restart(self, name: str) -> None:
        """Start a killed or exited piece again with its original command and wait until it is ready."""
        proc = self._procs.get(name)
        if proc is not None and proc.poll() is None:
            raise TopologyError(f"{name} is still running")
        piece = self._pieces[name]
        self._spawn(piece)
        self._wait_ready(piece)

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def exited(self) -> dict[str, int]:
        """Pieces that have exited, with their exit codes."""
        return {name: code for name, proc in self._procs.items() if (code := proc.poll()) is not None}

    def stop(self) -> None:
        """SIGTERM every process group in reverse start order, SIGKILL what outlives the grace period."""
        procs = list(reversed(self._procs.items()))
        self._procs.clear()
        for _, proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.stop_timeout_s
        for _, proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
            _signal_group(proc, signal.SIGKILL)  # grandchildren the piece left behind

    def __enter__(self) -> Topology:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


# ---------------------------------------------------------------------- the command


def _print_urls(topology: Topology, seconds: float) -> None:
    print(f"ragd up: every piece is ready ({seconds:.1f} s)", flush=True)
    for name, url in topology.urls.items():
        print(f"  {name:<11} {url}")
    print(f"OpenAI base URL {topology.urls['gateway']}/v1; every HTTP piece serves /health, /metrics; "
          f"logs in {topology.log_dir}")
    print("Ctrl-C stops them all.", flush=True)


def _run_up(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"base_port": args.base_port} if args.base_port is not None else {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.demo:
        from gateway.cli import demo_corpus_path

        overrides["demo_corpus"] = demo_corpus_path()
    if args.private_redis:
        overrides["private_redis"] = True
    if args.generator_url:
        overrides["generator_url"] = args.generator_url
    if args.generator_model:
        overrides["generator_model"] = args.generator_model
    topology = Topology(TopologySettings(**overrides))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    try:
        topology.start()
    except TopologyError as exc:
        print(f"ragd up: {exc}", file=sys.stderr)
        return 1
    try:
        _print_urls(topology, time.monotonic() - started)
        while not stop.wait(0.5):
            dead = topology.exited()
            if dead:
                name, code = next(iter(dead.items()))
                print(f"ragd up: {name} exited with code {code}; stopping the rest.\n{topology.log_tail(name)}",
                      file=sys.stderr)
                return 1
        print("ragd up: stopping", file=sys.stderr)
        return 0
    finally:
        topology.stop()


def add_up(parser: argparse.ArgumentParser) -> None:
    """Register ``ragd up [--base-port N] [--data-dir D] [--demo] [--private-redis] [--generator-url URL]``."""
    parser.add_argument("--base-port", type=int, default=None,
                        help="gateway port; chroma +1, retriever +2, generator +3, guardrails +4, redis +5 "
                             "(default 8000)")
    parser.add_argument("--data-dir", type=Path, default=None, help="state and logs (default .ragd/up)")
    parser.add_argument("--demo", action="store_true", help="ingest the bundled demo corpus on first start")
    parser.add_argument("--private-redis", action="store_true",
                        help="start a private redis-server even if one answers at RAGD_UP_REDIS_URL")
    parser.add_argument("--generator-url", default=None,
                        help="use this OpenAI-compatible server (e.g. vLLM, http://host:8000/v1) instead of "
                             "starting llama.cpp")
    parser.add_argument("--generator-model", default=None, help="model name it serves (default ragd-llm)")
    parser.set_defaults(run=_run_up)
