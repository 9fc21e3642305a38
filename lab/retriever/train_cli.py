"""``ragd train reranker`` and ``ragd train embedder``.

Hard negatives are mined with the retriever settings of the environment (``RAGD_RETRIEVER_*``,
``--set name=value`` on top); the training corpus is ingested once and kept in the evaluation cache.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from embeddings.e5_torch import E5TorchSettings, ensure_converted
from lab.retriever.eval_cli import settings_from_args
from lab.retriever.evaluation import load_beir
from lab.retriever.query_training import train_query_side
from lab.retriever.training import TrainConfig, default_backbone, train_embedder, train_reranker
from retriever.rerank import METADATA_FILE

__all__ = ["add_embedder", "add_reranker"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, required=True, help="BEIR folder with qrels/<split>.tsv")
    parser.add_argument("--split", default="train", help="qrels split to train on (default: train)")
    parser.add_argument("--out", type=Path, required=True, help="output model directory")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many optimiser steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5, help="learning rate")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per input (pair for a reranker)")
    parser.add_argument("--dev-fraction", type=float, default=0.1, help="training queries held out for scores")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--cache-dir", type=Path, default=Path(".ragd") / "eval-cache",
                        help="where the ingested training corpus is kept (default: .ragd/eval-cache)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override one retriever setting used for negative mining (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_reranker(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--base", default=None, help="starting model (default: the packaged MiniLM)")
    parser.add_argument("--negatives", type=int, default=4, help="hard negatives per positive")
    parser.add_argument("--loss", choices=("listwise", "bce"), default="listwise")
    parser.set_defaults(run=_run_reranker)


def add_embedder(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--base", default="minilm",
                        help="'minilm' (packaged all-MiniLM-L6-v2), 'e5' (packaged multilingual-e5-small, "
                             "converted), or a sentence-transformers directory (not used with --query-side)")
    parser.add_argument("--query-side", action="store_true",
                        help="fine-tune only the query encoder of the configured embedder against the passage "
                             "vectors of its index (no re-embedding); serve it with "
                             "RAGD_RETRIEVER_QUERY_EMBEDDER_MODEL")
    parser.add_argument("--temperature", type=float, default=0.02,
                        help="softmax temperature over the index's rows (--query-side)")
    parser.set_defaults(run=_run_embedder)


def _config(args: argparse.Namespace, *, negatives: int = 1, loss: str = "listwise") -> TrainConfig:
    return TrainConfig(epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                       learning_rate=args.lr, max_length=args.max_length, dev_fraction=args.dev_fraction,
                       seed=args.seed, negatives=negatives, loss="bce" if loss == "bce" else "listwise")


def _run_reranker(args: argparse.Namespace) -> int:
    dataset = load_beir(args.dataset, args.split)
    config = _config(args, negatives=args.negatives, loss=args.loss)
    out = train_reranker(dataset, settings_from_args(args.set), args.out, cache_root=args.cache_dir,
                         config=config, base=args.base, progress=not args.no_progress)
    print(json.dumps(json.loads((out / METADATA_FILE).read_text())["scores"], indent=2))
    print(f"reranker written to {out}; use it with RAGD_RETRIEVER_RERANKER_MODEL={out}")
    return 0


def _run_query_side(args: argparse.Namespace) -> int:
    settings = settings_from_args(args.set)
    out = train_query_side(load_beir(args.dataset, args.split), settings, args.out, cache_root=args.cache_dir,
                           config=_config(args), temperature=args.temperature, progress=not args.no_progress)
    print(json.dumps(json.loads((out / METADATA_FILE).read_text())["scores"], indent=2))
    print(f"query encoder written to {out}; use it with RAGD_RETRIEVER_QUERY_EMBEDDER_MODEL={out} beside the "
          f"same embedder settings (RAGD_RETRIEVER_EMBEDDER_BACKEND={settings.embedder_backend})")
    return 0


def _run_embedder(args: argparse.Namespace) -> int:
    if args.query_side:
        return _run_query_side(args)
    settings = settings_from_args(args.set)
    query_prefix = passage_prefix = ""
    if args.base == "minilm":
        base = default_backbone()
    elif args.base == "e5":
        base = str(ensure_converted(E5TorchSettings().models_dir))
        query_prefix, passage_prefix = "query: ", "passage: "
    else:
        base = args.base
    dataset = load_beir(args.dataset, args.split)
    out = train_embedder(dataset, settings, args.out, cache_root=args.cache_dir,
                         config=_config(args), base=base, query_prefix=query_prefix,
                         passage_prefix=passage_prefix, progress=not args.no_progress)
    print(json.dumps(json.loads((out / METADATA_FILE).read_text())["scores"], indent=2))
    backend = "e5-torch" if args.base == "e5" else "sentence-transformers"
    print(f"embedder written to {out}; use it with RAGD_RETRIEVER_EMBEDDER_BACKEND={backend} "
          f"RAGD_RETRIEVER_EMBEDDER_MODEL={out}")
    return 0
