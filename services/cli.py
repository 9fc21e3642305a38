"""The ``ragd`` command. Each subcommand lives with the piece it belongs to and is imported only
when used, so the gateway's image never imports torch for a command it does not run.

A registry entry is ``(module, function)``; the function receives its own ``ArgumentParser``,
adds its arguments and calls ``parser.set_defaults(run=callable)`` where the callable takes the
parsed ``argparse.Namespace`` and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

__all__ = ["COMMANDS", "GROUPS", "main"]

Entry = tuple[str, str]

COMMANDS: dict[str, Entry] = {
    "serve": ("gateway.cli", "add_serve"),
    "ingest": ("retriever.cli", "add_ingest"),
    "up": ("lab.topology", "add_up"),
    "bench": ("lab.bench", "add_bench"),
    "keys": ("gateway.keys_cli", "add_keys"),
}

GROUPS: dict[str, dict[str, Entry]] = {
    "eval": {
        "retrieval": ("lab.retriever.eval_cli", "add_retrieval"),
        "hnsw": ("lab.retriever.eval_cli", "add_hnsw"),
        "cache": ("lab.cache.eval_cli", "add_cache"),
        "guardrails": ("lab.guardrails.eval_cli", "add_guardrails"),
        "rag": ("lab.answers.cli", "add_rag"),
    },
    "train": {
        "reranker": ("lab.retriever.train_cli", "add_reranker"),
        "embedder": ("lab.retriever.train_cli", "add_embedder"),
        "guardrails": ("lab.guardrails.train_cli", "add_classifier"),
        "abstention": ("lab.answers.abstention", "add_abstention"),
    },
}


def _unavailable(parser: argparse.ArgumentParser) -> None:
    """A subcommand whose module is not installed (the tooling tree ``lab`` is not in the images)."""


def _load(entry: Entry) -> Callable[[argparse.ArgumentParser], None]:
    module, func = entry
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):  # a dependency is missing, not the module
            raise
        return _unavailable
    add: Callable[[argparse.ArgumentParser], None] = getattr(loaded, func)
    return add


def _build(argv: list[str]) -> argparse.ArgumentParser:
    """Build the parser, importing only the modules of the subcommand named in ``argv``."""
    words = [a for a in argv if not a.startswith("-")]
    parser = argparse.ArgumentParser(prog="ragd", description="ragd: a production RAG backend.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, entry in COMMANDS.items():
        child = sub.add_parser(name, help=f"ragd {name}")
        if words[:1] == [name]:
            _load(entry)(child)
    for group, entries in GROUPS.items():
        child = sub.add_parser(group, help=f"ragd {group} {{{','.join(entries)}}}")
        inner = child.add_subparsers(dest="what", metavar="WHAT", required=True)
        for name, entry in entries.items():
            leaf = inner.add_parser(name, help=f"ragd {group} {name}")
            if words[:2] == [group, name]:
                _load(entry)(leaf)
    return parser


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    args = _build(args_list).parse_args(args_list)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        print(f"ragd: '{' '.join(args_list)}' is not available in this installation.", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
