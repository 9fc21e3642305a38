"""What the deploy tests read: the compose file, the Dockerfiles, and which settings each service reads."""

from __future__ import annotations

import argparse
import importlib
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
RAGD_SERVICES = ("gateway", "retriever", "guardrails", "generator")
BUILT_SERVICES = (*RAGD_SERVICES, "chroma")
# The settings classes each ragd process reads (the gateway also hosts the cache library and its embedder;
# the guardrails classifier's semantic block reads where the e5 graphs are kept).
SETTINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "gateway": (("gateway.settings", "GatewaySettings"), ("cache.settings", "CacheSettings"),
                ("embeddings.e5_onnx", "E5OnnxSettings"), ("generator.settings", "GeneratorSettings")),
    "retriever": (("retriever.settings", "RetrieverSettings"), ("embeddings.e5_torch", "E5TorchSettings"),
                  ("embeddings.e5_onnx", "E5OnnxSettings")),
    "guardrails": (("guardrails.settings", "GuardrailsSettings"), ("embeddings.e5_onnx", "E5OnnxSettings")),
    "generator": (("generator.settings", "GeneratorSettings"),),
}


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def settings_classes(service: str) -> list[type[BaseSettings]]:
    """The settings classes of a service; raises ImportError while one has not landed yet."""
    return [getattr(importlib.import_module(module), name) for module, name in SETTINGS[service]]


def env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {(prefix + name).upper() for name in cls.model_fields}


def unknown_settings(service: str, names: set[str]) -> set[str]:
    """The ``RAGD_*`` names among ``names`` that no settings class of ``service`` reads."""
    known = set().union(*(env_names(cls) for cls in settings_classes(service)))
    return {n for n in names if n.upper().startswith("RAGD_") and n.upper() not in known}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def dockerfile(service: str) -> list[Instruction]:
    """The instructions of deploy/<service>/Dockerfile (continuations joined, comments dropped)."""
    text = (ROOT / "deploy" / service / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            out.append(Instruction(keyword.upper(), args.strip()))
    return out


def dockerfile_env(service: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in dockerfile(service):
        if ins.keyword == "ENV":
            env.update(dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", ins.args)))
    return env


def extras_installed(service: str) -> list[str]:
    """The pyproject extras a Dockerfile installs with ``pip install ".[extra,...]"``."""
    found: list[str] = []
    for ins in dockerfile(service):
        if ins.keyword == "RUN":
            for group in re.findall(r"""["']?\.\[([a-z0-9_,-]+)\]["']?""", ins.args):
                found.extend(group.split(","))
    return found


def cli_port(command: list[str]) -> int:
    return int(command[command.index("--port") + 1])


def parse_serve(command: list[str]) -> argparse.Namespace:
    """Parse a ``ragd serve ...`` command line with the real ``ragd serve`` parser."""
    from gateway.cli import add_serve

    assert command[:2] == ["ragd", "serve"], command
    parser = argparse.ArgumentParser(prog="ragd serve", exit_on_error=False)
    add_serve(parser)
    return parser.parse_args(command[2:])
