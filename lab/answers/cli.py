"""``ragd eval rag``: questions through the real chat path, answers scored end to end.

In process by default (the embedded gateway over a fresh data directory, configured by the same environment as
``ragd serve``), or against a running gateway with ``--url``. The corpus is the dataset's documents minus a
seeded held-out share; questions about held-out documents must be declined. Questions of the calibration split
(:func:`lab.answers.data.in_calibration_split`) are never evaluated: settings are chosen on them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.answers.data import QADataset, load_qa, sample_items, split_heldout
from lab.answers.metrics import Scored, score, summarize
from lab.answers.plot import plot_reports
from lab.answers.report import KEYS, markdown, question_rows
from lab.answers.runner import GatewayRunner, InProcessRunner, Outcome, Runner, index_dir, run_items

__all__ = ["add_rag", "evaluate_rag"]


def add_rag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, default=None,
                        help="BEIR folder with answers.jsonl, or a SQuAD-format JSON (or a folder holding one)")
    parser.add_argument("--split", default="test", help="qrels split of a BEIR folder (default: test)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate N questions, drawn with --seed")
    parser.add_argument("--unanswerable-share", type=float, default=0.2,
                        help="share of the documents held out of the corpus (their questions must be declined)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out documents and the sample")
    parser.add_argument("--calibration", action="store_true",
                        help="draw from the calibration split instead (for choosing settings, never for reporting)")
    parser.add_argument("--url", default=None, help="OpenAI base URL of a running ragd gateway (default: in process)")
    parser.add_argument("--api-key", default="none", help="API key for --url")
    parser.add_argument("--collection", default=None, help="collection for --url (default: one per corpus)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="in process: keep each ingested corpus in a folder under here and reuse it (default: "
                             "a fresh temporary data dir)")
    parser.add_argument("--judge-url", default=None, help="OpenAI base URL of an LLM that judges faithfulness")
    parser.add_argument("--judge-model", default="judge", help="model name for --judge-url")
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline of one question, seconds")
    parser.add_argument("--json", type=Path, default=None, help="write the report here as JSON")
    parser.add_argument("--report", type=Path, default=None, help="write the Markdown report here")
    parser.add_argument("--plot", type=Path, default=None,
                        help="bar chart (PNG) of this run beside the --plot-with reports")
    parser.add_argument("--plot-with", type=Path, action="append", default=[], metavar="REPORT_JSON",
                        help="saved reports drawn beside this run (repeatable)")
    parser.add_argument("--plot-only", action="store_true", help="draw the --plot-with reports; run nothing")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(run=_run)


def _generator_label(url: str | None) -> str:
    if url:
        return f"gateway {url}"
    from generator.settings import GeneratorSettings

    settings = GeneratorSettings()
    if settings.backend == "auto":
        return "llm" if settings.url else "extractive"
    if settings.backend == "by-language":
        return "by-language " + ",".join(f"{k}:{v}" for k, v in sorted(settings.language_backends.items()))
    return settings.backend


async def _answers(args: argparse.Namespace, docs: Sequence[Any], dataset: QADataset,
                   items: Sequence[Any]) -> list[Outcome]:
    progress = not args.no_progress
    if args.url:
        collection = args.collection or GatewayRunner.collection_for(dataset.name, docs)
        remote = GatewayRunner(args.url, api_key=args.api_key, collection=collection, timeout_s=args.timeout)
        try:
            await remote.ingest(docs, progress=progress)
            return await run_items(remote, items, timeout_s=args.timeout, progress=progress)
        finally:
            await remote.aclose()
    data_dir = index_dir(args.data_dir, dataset.name, docs) if args.data_dir else None
    async with InProcessRunner.started(data_dir) as local:
        runner: Runner = local
        await runner.ingest(docs, progress=progress)
        if items:  # the first question loads lazily built parts; it is asked again, timed, below
            await runner.ask(items[0].question)
        return await run_items(runner, items, timeout_s=args.timeout, progress=progress)


def evaluate_rag(args: argparse.Namespace) -> tuple[dict[str, Any], list[Scored]]:
    if args.dataset is None:
        raise SystemExit("ragd eval rag: --dataset is required")
    dataset = load_qa(args.dataset, args.split)
    docs, marked = split_heldout(dataset, args.unanswerable_share, args.seed)
    items = sample_items(marked.items, args.limit, args.seed, calibration=args.calibration)
    outcomes = asyncio.run(_answers(args, docs, dataset, items))
    judge = None
    if args.judge_url:
        from lab.answers.judge import LlmJudge

        judge = LlmJudge(args.judge_url, model=args.judge_model)
    texts = dataset.doc_text()
    rows = [score(o, texts, short_answers=dataset.short_answers, judge=judge, abstention_texts=_abstention_texts())
            for o in outcomes]
    report: dict[str, Any] = {"dataset": dataset.name, **summarize(rows)}
    report["by_language"] = {lang: summarize([r for r in rows if r.outcome.item.language == lang])
                             for lang in sorted({r.outcome.item.language for r in rows})}
    report["answer_metrics"] = "short answers" if dataset.short_answers else "long answers: citations and abstention"
    report["config"] = {"unanswerable_share": args.unanswerable_share, "seed": args.seed, "limit": args.limit,
                        "split": "calibration" if args.calibration else "evaluation",
                        "target": f"gateway {args.url}" if args.url else "in process",
                        "generator": _generator_label(args.url), "documents_ingested": len(docs),
                        "documents": len(dataset.docs)}
    if judge is not None:
        from lab.answers.judge import agreement, lexical_judge, load_labels

        labels = load_labels()
        report["judge"] = {"model": args.judge_model, "agreement": agreement(judge, labels),
                           "lexical_agreement": agreement(lexical_judge, labels)}
    report["questions"] = question_rows(rows)
    return report, rows


def _abstention_texts() -> list[str]:
    """The gateway's own abstention sentences, so they are recognised exactly."""
    from generator.settings import GeneratorSettings

    settings = GeneratorSettings()
    return [settings.abstain_text_en, settings.abstain_text_ko]


def _run(args: argparse.Namespace) -> int:
    saved = [json.loads(p.read_text(encoding="utf-8")) for p in args.plot_with]
    if args.plot_only:
        if args.plot is None or not saved:
            raise SystemExit("ragd eval rag --plot-only wants --plot and --plot-with")
        plot_reports(saved, args.plot)
        return 0
    # a SIGTERM (a timeout) unwinds like Ctrl-C, so the local llama.cpp server started for the run is stopped
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    report, rows = evaluate_rag(args)
    print(f"{report['dataset']}: {report['n']} questions ({report['n_unanswerable']} unanswerable), "
          f"generator {report['config']['generator']}")
    for lang, numbers in [("all", report), *report["by_language"].items()]:
        print(f"  {lang:>3}: " + "  ".join(f"{k} {numbers[k]}" for k in KEYS if numbers.get(k) is not None))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(markdown(report, rows), encoding="utf-8")
    if args.plot is not None:
        plot_reports([report, *saved], args.plot)
    return 0
