"""``ragd train guardrails``: fit the injection classifier on the labelled data and save it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from guardrails.classifier import InjectionClassifier
from guardrails.data import default_data_dir, load_split
from guardrails.semantic import SemanticSpec
from guardrails.settings import default_model_path
from guardrails.training import add_turn_model, train_classifier

__all__ = ["add_classifier"]


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    examples = load_split("train", data_dir, group=args.group)
    note = f"train split (70 %) of source group {args.group}"
    if args.turn_model_only:
        base = InjectionClassifier.load(Path(args.base or args.out))
        classifier = add_turn_model(base, examples, c=args.c)
        classifier.save(Path(args.out))
        print(f"turn model trained on {classifier.meta['short_texts']} short texts ({note}) in "
              f"{time.perf_counter() - start:.1f}s, main weights kept; chat turns blocked out-of-fold: en "
              f"{classifier.meta['oof_conversation_fpr_en']}, ko {classifier.meta['oof_conversation_fpr_ko']}; "
              f"training attacks the turn model vetoes: en {classifier.meta['turn_model_vetoed_attacks_en']}, "
              f"ko {classifier.meta['turn_model_vetoed_attacks_ko']} -> {args.out}")
        return 0
    semantic = None if args.no_semantic else SemanticSpec(layers=args.semantic_layers, tokens=args.semantic_tokens)
    classifier = train_classifier(examples, c=args.c, target_fpr=args.target_fpr, target_fpr_ko=args.target_fpr_ko,
                                  semantic=semantic, note=note)
    out = Path(args.out)
    classifier.save(out)
    attacks = sum(e.label == "attack" for e in examples)
    print(f"trained on {len(examples)} examples ({attacks} attacks; {note}) in "
          f"{time.perf_counter() - start:.1f}s; classifier alone, out-of-fold, at {args.target_fpr:.1%} / "
          f"{args.target_fpr_ko:.1%} FPR (en / ko): "
          f"recall en {classifier.meta['oof_recall_at_target_en']}, ko {classifier.meta['oof_recall_at_target_ko']}; "
          f"chat turns blocked en {classifier.meta['oof_conversation_fpr_en']}, "
          f"ko {classifier.meta['oof_conversation_fpr_ko']}; semantic block: {classifier.meta['semantic']} -> {out}")
    return 0


def add_classifier(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=str(default_model_path()), help="Where to write the .npz weights.")
    parser.add_argument("--data-dir", default=None, help="Shared data directory (default: ../shared/data).")
    parser.add_argument("--c", type=float, default=64.0, help="Inverse regularisation strength.")
    parser.add_argument("--target-fpr", type=float, default=0.015,
                        help="Out-of-fold benign false-positive rate that p = 0.5 is calibrated to (English and "
                             "any other non-Korean text).")
    parser.add_argument("--target-fpr-ko", type=float, default=0.02,
                        help="The same for Korean, whose benign training texts are mostly hard negatives. 2 %% was "
                             "chosen on the dev protocol (group A on group B's training texts: recall 0.735 -> "
                             "0.756 at FPR 0.0075) with at most 2 %% of the everyday-request probe blocked; 2.5 %% "
                             "read 0.801 but at FPR 0.015 and 2 of 70 everyday requests blocked.")
    parser.add_argument("--group", choices=("all", "a"), default="all",
                        help="all: every source (the shipped model); a: group A only (unseen-source measurement).")
    parser.add_argument("--turn-model-only", action="store_true",
                        help="Keep the main weights of --base (default: --out) and (re)train only the turn model.")
    parser.add_argument("--no-semantic", action="store_true",
                        help="n-gram features only: no semantic vectors (the recipe before the semantic block).")
    parser.add_argument("--semantic-layers", type=int, default=SemanticSpec.layers,
                        help="e5 encoder layers the semantic vector is pooled after (of 12).")
    parser.add_argument("--semantic-tokens", type=int, default=SemanticSpec.tokens,
                        help="Tokens of the text's head the semantic vector reads.")
    parser.add_argument("--base", default=None, help="With --turn-model-only: the model whose main weights are kept.")
    parser.set_defaults(run=_run)
