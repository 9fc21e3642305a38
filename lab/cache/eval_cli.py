"""``ragd eval cache [--pairs FILE ...] [--json OUT] [--plot PNG]``: semantic-cache precision over
thresholds, guarded and, for pairs about a corpus, evidence-checked (the question's own retrieval).
``--url URL``: the pairs about a corpus through a running gateway instead (:mod:`lab.cache.http_eval`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cache.embedders import CACHE_RUNTIMES, question_embedder
from cache.evidence import EvidenceCheck
from cache.settings import CacheSettings
from lab.cache.evaluation import PAIRS_PATH, Agrees, Pair, evaluate, load_pairs, respelt_texts
from lab.cache.protocol import leave_kind_out
from lab.cache.vectors import cached_vectors
from lab.guardrails.data import default_data_dir

__all__ = ["DEFAULT_PAIRS", "DEV_PAIRS", "add_cache", "plot"]

DATA = Path(__file__).parent / "data"
DEFAULT_PAIRS = (
    PAIRS_PATH, DATA / "grounded_pairs.jsonl", DATA / "style_pairs.jsonl", DATA / "style_holdout_pairs.jsonl",
    DATA / "style_holdout2_pairs.jsonl", DATA / "style_holdout3_pairs.jsonl", DATA / "style_holdout4_pairs.jsonl",
)


# the files holding the project's dev pairs, which the shipped threshold, guards and evidence rank were chosen on
DEV_PAIRS = (PAIRS_PATH, DATA / "grounded_pairs.jsonl", DATA / "style_pairs.jsonl")


def add_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", type=Path, action="append", default=None,
                        help="Pair set (JSONL, see docs/cache.md); repeat to join several. Default: the project's "
                             "pairs, the pairs about a corpus and the style pairs.")
    parser.add_argument("--with-dev", action="store_true",
                        help="Prepend the project's dev pairs (their dev split only) to --pairs, so the protocol "
                             "chooses the threshold, guards and evidence rank on them as it chose the shipped ones, "
                             "and scores the pairs given at that choice.")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="Shared data directory holding the corpora the pairs name (default: ../shared/data).")
    parser.add_argument("--no-evidence", action="store_true",
                        help="Skip the retrieval, and with it the evidence-checked rows.")
    parser.add_argument("--embedder", choices=sorted(CACHE_RUNTIMES), default="e5-onnx", help="Question embedder.")
    parser.add_argument("--choose", choices=("leave-kind-out", "dev", "configured"), default="leave-kind-out",
                        help="How the threshold (and the guards switched off) are chosen on the dev pairs: the "
                             "leave-kind-out protocol (lab/cache/protocol.py; threshold and guards), the lowest "
                             "threshold with <= 1%% false hits (threshold only), or the configured settings. "
                             "Pairs without a dev split are scored at the configured settings.")
    parser.add_argument("--cache-root", type=Path, default=Path(".ragd") / "eval-cache",
                        help="Where question vectors, indexes and retrievals are kept for reruns.")
    parser.add_argument("--url", default=None,
                        help="OpenAI base URL of a running ragd gateway: ask the pairs about a corpus through its HTTP "
                             "API (each corpus ingested into a collection of its own) and score what its "
                             "x-ragd-cache header says, at the gateway's own settings.")
    parser.add_argument("--collection", default=None,
                        help="With --url: ask the pairs about no corpus in this existing collection (left out "
                             "otherwise). A question its documents do not cover is declined, and every decline reads "
                             "the same, so a crowded false hit between two declines cannot be told apart.")
    parser.add_argument("--api-key", default="none", help="API key for --url (a key with admin scope where the "
                                                          "gateway has keys: it creates the collections).")
    parser.add_argument("--json", type=Path, default=None, help="Write the full report (all sweeps) here.")
    parser.add_argument("--plot", type=Path, default=None, help="Write a PNG of hit and false-hit rates here.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    paths = args.pairs or DEFAULT_PAIRS
    pairs = load_pairs(*paths)
    if not pairs:
        print(f"ragd eval cache: {', '.join(map(str, paths))} holds no pairs", file=sys.stderr)
        return 2
    if args.with_dev:
        pairs = [p for p in load_pairs(*DEV_PAIRS) if p.split == "dev"] + pairs
    elif args.pairs:
        given = {p.id for p in pairs if p.split == "dev"}
        project = {p.id for p in load_pairs(*DEV_PAIRS) if p.split == "dev"}
        if not given:
            print("ragd eval cache: these pairs have no dev split, so they are scored at the configured settings; "
                  "--with-dev prepends the project's dev pairs to choose them as the shipped ones were chosen",
                  file=sys.stderr)
        elif given < project:
            print(f"ragd eval cache: the dev pairs given are {len(given)} of the project's {len(project)}, so the "
                  "protocol may choose other settings than the shipped ones, which were chosen on all of them "
                  "(--with-dev prepends them)", file=sys.stderr)
    if args.url:
        return _run_over_http(args, pairs)
    settings = CacheSettings()
    checks = None if args.no_evidence else _evidence(pairs, args.data_dir or default_data_dir(), settings)
    embedder = question_embedder(CacheSettings(embedder=args.embedder))  # loads on first use, if a vector is new
    vectors = cached_vectors(pairs, args.embedder, lambda: embedder, args.cache_root)
    respelt = [Pair(f"respelt-{i}", "", "", False, "", t, t)
               for i, t in enumerate(sorted(respelt_texts(pairs, vectors, settings.respell_floor)))]
    vectors |= cached_vectors(respelt, args.embedder, lambda: embedder, args.cache_root)
    dev = [p for p in pairs if p.split == "dev"]
    protocol: dict[str, Any] | None = None
    chosen: tuple[float, str] | None = (settings.semantic_threshold, "configured")
    by_language: dict[str, float] = dict(settings.semantic_thresholds)
    guards_off = settings.guards_off
    rank = settings.evidence_cited_rank
    if dev and args.choose == "leave-kind-out":
        protocol = leave_kind_out(dev, vectors, checks)
        chosen = (protocol["shipped"]["threshold"], "leave-kind-out")
        by_language = protocol["shipped"]["thresholds"]
        guards_off = frozenset(protocol["shipped"]["guards_off"])
        rank = protocol["shipped"]["cited_rank"]
    elif dev and args.choose == "dev":
        chosen, by_language = None, {}
    agrees = checks.get(rank) if checks else None
    report = evaluate(embedder, pairs, settings.semantic_threshold, agrees, guards_off, vectors=vectors,
                      chosen=chosen, by_language=by_language)
    report["evidence_rule"] = {"min_cited": settings.evidence_min_cited, "min_overlap": settings.evidence_min_overlap,
                               "cited_rank": rank}
    report["configured"] = {"threshold": settings.semantic_threshold, "thresholds": dict(settings.semantic_thresholds),
                            "guards_off": sorted(settings.guards_off), "cited_rank": settings.evidence_cited_rank}
    if protocol is not None:
        report["leave_kind_out"] = protocol
    report["embedder"] = args.embedder
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    if args.plot:
        plot(report, args.plot)
    print(_summary(report))
    return 0


def _run_over_http(args: argparse.Namespace, pairs: list[Pair]) -> int:
    import asyncio

    from lab.cache.http_eval import evaluate_over_http

    if not any(p.corpus for p in pairs) and not args.collection:
        print("ragd eval cache --url: no pair is about a corpus; name a collection to ask them in (--collection)",
              file=sys.stderr)
        return 2
    report = asyncio.run(evaluate_over_http(pairs, args.url, api_key=args.api_key, collection=args.collection,
                                            data_dir=args.data_dir or default_data_dir()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    left_out = f"{report['skipped_without_corpus']} pairs about no corpus left out" if not args.collection else \
        f"pairs about no corpus asked in the collection {args.collection}"
    lines = [f"through {report['url']} (the gateway's own settings; {left_out})",
             f"{'subset':<22}{'pairs':>10}{'hit':>8}{'false':>8}{'crowd hit':>11}{'crowd false':>13}"
             f"{'corpus false':>14}{'unstored':>10}"]
    for name, row in report["subsets"].items():
        p, c, w = row["pairwise"], row["crowded"], row["crowded_corpus"]
        lines.append(f"{name:<22}{row['paraphrases']:>4}+{row['near_misses']:<5}{p['hit_rate']:>8.1%}"
                     f"{p['false_hit_rate']:>8.1%}{c['hit_rate']:>11.1%}{c['false_hit_rate']:>13.1%}"
                     f"{w['false_hit_rate']:>14.1%}{len(row['unstored']):>10}")
        if p["false_hits"] or c["false_hits"] or w["false_hits"]:
            views = (p, c, w)
            lines.append(f"{'':<22}false hits: {sorted({i for v in views for i in v['false_hits']})}; served "
                         "another answer than the question's own: "
                         f"{sorted({i for v in views for i in v['false_hits_answered_otherwise']})}")
    print("\n".join(lines))
    return 0


RANKS = (1, 2, 0)  # the evidence ranks the leave-kind-out protocol considers (0: the whole top-k)


def _evidence(pairs: list[Pair], data_dir: Path, settings: CacheSettings) -> dict[int, Agrees] | None:
    """The evidence check over the retrieval of the pairs about a corpus, at each cited rank considered
    and the configured one; None when no pair is about a corpus."""
    if not any(p.corpus for p in pairs):
        return None
    from lab.cache.grounding import agreement_check, retrieve_pairs  # loads the retriever: only when needed

    retrieved = retrieve_pairs(pairs, data_dir)
    return {rank: agreement_check(retrieved, EvidenceCheck(settings.evidence_min_cited,
                                                           settings.evidence_min_overlap, rank))
            for rank in dict.fromkeys((*RANKS, settings.evidence_cited_rank))}


def _summary(report: dict[str, Any]) -> str:
    t = report["chosen_threshold"]
    source = {
        "dev": "chosen on dev (false hits <= 1%, pairwise and crowded)",
        "leave-kind-out": "chosen on dev by the leave-kind-out protocol (lab/cache/protocol.py)",
    }.get(report["threshold_source"], "the configured RAGD_CACHE_SEMANTIC_THRESHOLD and RAGD_CACHE_GUARDS_OFF")
    per_language = "".join(f", {lang} {v}" for lang, v in report.get("chosen_thresholds", {}).items())
    lines = [
        f"embedder {report['embedder']}; threshold {t}{per_language}, guards off {report['guards_off']}: {source}",
        f"embedding latency p50 ms: {report['embed_latency_ms_p50']}",
        f"{'subset':<14}{'pairs':>12}{'hit':>8}{'false':>8}{'crowd hit':>11}{'crowd false':>13}{'raw hit':>9}"
        f"{'raw false':>11}",
    ]
    for name, row in report["at_chosen"].items():
        counts = report["pairs"][name]
        p, c, u = row["pairwise"], row["crowded"], row["pairwise_unguarded"]
        lines.append(
            f"{name:<14}{counts['paraphrase']:>5}+{counts['near_miss']:<6}{p['hit_rate']:>8.1%}{p['false_hit_rate']:>8.1%}"
            f"{c['hit_rate']:>11.1%}{c['false_hit_rate']:>13.1%}{u['hit_rate']:>9.1%}{u['false_hit_rate']:>11.1%}"
        )
        if p["false_hits"] or c["false_hits"]:
            lines.append(f"{'':<14}false hits: {sorted(set(p['false_hits']) | set(c['false_hits']))}")
    if "leave_kind_out" in report:
        lko = report["leave_kind_out"]
        lines.append("leave-kind-out (choose on dev without one near-miss kind, score that kind):")
        for kind, fold in lko["folds"].items():
            lines.append(f"  {kind:<10} threshold {fold['threshold']} guards off {fold['guards_off']} cited rank "
                         f"{fold['cited_rank']}: held-out false hits {fold['held_out_false_hit_rate']:.1%} of "
                         f"{fold['held_out_near_misses']} {fold['held_out_false_hits'] or ''}")
        lines.append("  refit with the guards every fold switched off, then scored on the held-out kind again:")
        for kind, fold in lko["refit_folds"].items():
            lines.append(f"  {kind:<10} threshold {fold['threshold']} cited rank {fold['cited_rank']}: held-out "
                         f"false hits {fold['held_out_false_hit_rate']:.1%} {fold['held_out_false_hits'] or ''}")
        for lang, chosen in lko.get("languages", {}).items():
            folds = ", ".join(f"{kind} {fold['threshold']}" for kind, fold in chosen["folds"].items())
            lines.append(f"  {lang}: the same folds on {lang} pairs alone, threshold {chosen['threshold']} ({folds})")
        lines.append(f"  shipped: {lko['shipped']}")
    evidenced = {n: r for n, r in report["at_chosen"].items() if "pairwise_evidence" in r}
    if evidenced:
        lines.append("evidence-checked (pairs about a corpus; the question's own top-k must hold the cached answer's "
                     f"evidence: {report['evidence_rule']}):")
        lines.append(f"{'subset':<14}{'pairs':>7}{'hit':>8}{'false':>8}{'crowd hit':>11}{'crowd false':>13}")
        for name, row in evidenced.items():
            p, c = row["pairwise_evidence"], row["crowded_evidence"]
            lines.append(f"{name:<14}{p['pairs']:>7}{p['hit_rate']:>8.1%}{p['false_hit_rate']:>8.1%}"
                         f"{c['hit_rate']:>11.1%}{c['false_hit_rate']:>13.1%}")
            if p["false_hits"] or c["false_hits"]:
                lines.append(f"{'':<14}false hits: {sorted(set(p['false_hits']) | set(c['false_hits']))}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in report["sweeps"] if not n.endswith(("_en", "_ko"))][:3]
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        rows = report["sweeps"][name]
        ts = [r["threshold"] for r in rows]
        for key, label, style in (
            ("pairwise", "guarded", "-"),
            ("crowded", "guarded, crowded cache", "--"),
            ("pairwise_unguarded", "cosine only", ":"),
        ):
            ax.plot(
                ts, [r[key]["hit_rate"] for r in rows], style, color="tab:green", label=f"paraphrase hits ({label})"
            )
            ax.plot(ts, [r[key]["false_hit_rate"] for r in rows], style, color="tab:red", label=f"false hits ({label})")
        ax.axvline(report["chosen_threshold"], color="gray", lw=0.8)
        for lang, t in report.get("chosen_thresholds", {}).items():
            ax.axvline(t, color="gray", lw=0.8, ls=":")
            ax.annotate(lang, (t, 1.0), fontsize=7, color="gray", ha="right")
        ax.axhline(0.01, color="tab:red", lw=0.5, alpha=0.5)
        ax.set(title=f"{name} pairs ({report['embedder']})", xlabel="cosine threshold", ylabel="rate", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="center left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
