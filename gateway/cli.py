"""``ragd serve [gateway|retriever|guardrails|generator]``: run one piece as an HTTP service.

``ragd serve`` alone runs the embedded gateway: every piece in one process.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["PIECES", "add_serve", "demo_corpus_path"]


def demo_corpus_path() -> Path:
    return Path(__file__).resolve().parent / "demo_corpus"


def _serve_app(module: str, settings_module: str, settings_class: str, args: argparse.Namespace) -> int:
    import uvicorn

    overrides: dict[str, Any] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = getattr(importlib.import_module(settings_module), settings_class)(**overrides)
    app = importlib.import_module(module).create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    return 0


def _serve_gateway(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.ops import serve
    from gateway.settings import GatewaySettings

    overrides: dict[str, Any] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if args.demo:
        overrides["demo_corpus"] = demo_corpus_path()
    settings = GatewaySettings(**overrides)
    app = create_app(settings)  # the auth mode is chosen at start (gateway.access): open mode only on loopback
    print(f"ragd: gateway on http://{settings.host}:{settings.port} (OpenAI base URL "
          f"http://{settings.host}:{settings.port}/v1)", file=sys.stderr, flush=True)
    if settings.metrics_port is not None:
        print(f"ragd: metrics on http://{settings.host}:{settings.metrics_port}/metrics (internal)",
              file=sys.stderr, flush=True)
    serve(app, settings)
    return 0


def _serve_generator(args: argparse.Namespace) -> int:
    from generator.llamacpp import _model_path, serve_forever
    from generator.settings import GeneratorSettings

    overrides: dict[str, Any] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = GeneratorSettings(**overrides)
    serve_forever(str(_model_path(settings)), settings.host, settings.port, settings.n_ctx,
                  settings.n_parallel, settings.threads, settings.batch_tokens)
    return 0


PIECES: dict[str, Callable[[argparse.Namespace], int]] = {
    "gateway": _serve_gateway,
    "retriever": lambda a: _serve_app("retriever.app", "retriever.settings", "RetrieverSettings", a),
    "guardrails": lambda a: _serve_app("guardrails.app", "guardrails.settings", "GuardrailsSettings", a),
    "generator": _serve_generator,
}


def add_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("piece", nargs="?", default="gateway", choices=sorted(PIECES),
                        help="which piece to serve (default: the embedded gateway)")
    parser.add_argument("--host", default=None, help="interface to listen on (default from settings)")
    parser.add_argument("--port", type=int, default=None, help="port (default from settings)")
    parser.add_argument("--demo", action="store_true", help="ingest the bundled demo corpus on first start")
    parser.set_defaults(run=lambda a: PIECES[a.piece](a))
