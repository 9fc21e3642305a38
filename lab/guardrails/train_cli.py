"""``ragd train guardrails``: fit the injection classifier on the training pool and save it.

The pool is every permissively licensed source family plus ragd's own corpus
(:mod:`lab.guardrails.families`); evaluation-only sets are never trained on. The model keeps its
fitted intercept: the cut points that turn its score into block / flag / pass are the policy's,
chosen on the leave-source-out protocol (``--leave-source-out`` runs it after training).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from guardrails.classifier import InjectionClassifier
from guardrails.semantic import SemanticSpec
from guardrails.settings import default_model_path
from lab.guardrails.data import default_data_dir
from lab.guardrails.training import add_turn_model, train_with_oof

__all__ = ["add_classifier"]


def _run(args: argparse.Namespace) -> int:
    from lab.guardrails.families import FAMILIES
    from lab.guardrails.protocol import load_pool
    from lab.guardrails.vectors import VectorCache

    start = time.perf_counter()
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    pool = load_pool(data_dir, [f for f in FAMILIES if f.trainable])
    chosen = pool.select(pool.split == "train") if args.pool == "split70" else list(range(len(pool.rows)))
    examples = [pool.rows[i].example for i in chosen]
    note = ("70 % bucket of the permissive families and ragd's corpus" if args.pool == "split70"
            else "every permissive family and ragd's corpus")
    if args.turn_model_only:
        base = InjectionClassifier.load(Path(args.base or args.out))
        classifier = add_turn_model(base, examples, c=args.c)
        classifier.save(Path(args.out))
        print(f"turn model trained on {classifier.meta['short_texts']} short texts ({note}) in "
              f"{time.perf_counter() - start:.1f}s, main weights kept -> {args.out}")
        return 0
    semantic = None if args.no_semantic else SemanticSpec(layers=args.semantic_layers, tokens=args.semantic_tokens,
                                                          scale=args.semantic_scale)
    vectors = None if semantic is None else VectorCache(semantic).vectors([pool.normalized[i] for i in chosen])
    assert pool.ngrams is not None
    classifier = train_with_oof(examples, c=args.c, semantic=semantic, vectors=vectors, note=note, calibrate=False,
                                ngrams=pool.ngrams[np.array(chosen)], balance_sources=True).classifier
    out = Path(args.out)
    classifier.save(out)
    attacks = sum(e.label == "attack" for e in examples)
    print(f"trained on {len(examples)} examples ({attacks} attacks; {note}) in {time.perf_counter() - start:.1f}s; "
          f"semantic block: {classifier.meta['semantic']} -> {out}")
    if args.leave_source_out:
        from lab.guardrails.report import run_leave_source_out

        return run_leave_source_out(data_dir, policy_path=Path(args.policy) if args.policy else None,
                                    json_out=args.json, plot=None, reuse_scores=False,
                                    choose_cuts_on_protocol=args.choose_cuts)
    return 0


def add_classifier(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=str(default_model_path()), help="Where to write the .npz weights.")
    parser.add_argument("--data-dir", default=None, help="Shared data directory (default: ../shared/data).")
    parser.add_argument("--c", type=float, default=1.0,
                        help="Inverse regularisation strength (1 was chosen on the leave-source-out protocol: "
                             "64, the earlier value, fits the training sources' words and transfers worse).")
    parser.add_argument("--pool", choices=("permissive", "split70"), default="permissive",
                        help="permissive: every row of the permissive families and ragd's corpus (the shipped "
                             "model); split70: their 70 %% bucket (the in-distribution table's model).")
    parser.add_argument("--leave-source-out", action="store_true",
                        help="Then run the leave-source-out protocol with this recipe and print its tables.")
    parser.add_argument("--choose-cuts", action="store_true",
                        help="With --leave-source-out: report at cut points chosen on the protocol.")
    parser.add_argument("--policy", default=None, help="With --leave-source-out: the policy whose cut points apply.")
    parser.add_argument("--json", default=None, help="With --leave-source-out: write its results here.")
    parser.add_argument("--turn-model-only", action="store_true",
                        help="Keep the main weights of --base (default: --out) and (re)train only the turn model.")
    parser.add_argument("--no-semantic", action="store_true",
                        help="n-gram features only: no semantic vectors (the recipe before the semantic block).")
    parser.add_argument("--semantic-layers", type=int, default=SemanticSpec.layers,
                        help="e5 encoder layers the semantic vector is pooled after (of 12).")
    parser.add_argument("--semantic-tokens", type=int, default=SemanticSpec.tokens,
                        help="Tokens of the text's head the semantic vector reads.")
    parser.add_argument("--semantic-scale", type=float, default=SemanticSpec.scale,
                        help="Weight of the semantic block against the l2-normalised n-gram blocks.")
    parser.add_argument("--base", default=None, help="With --turn-model-only: the model whose main weights are kept.")
    parser.set_defaults(run=_run)
