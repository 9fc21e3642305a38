"""The Markdown report of ``ragd eval rag``: the numbers, then the worst questions first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lab.answers.metrics import Scored

__all__ = ["KEYS", "markdown", "question_rows", "severity"]

# the numbers a run reports, in the order they are printed and tabled
KEYS = ("answer_contains_gold", "answer_f1", "cited_gold", "citation_precision", "faithfulness",
        "abstain_unanswerable", "abstain_answerable", "held_out_answered", "finish_stop", "latency_ms_p50",
        "latency_ms_p95", "ttft_ms_p50", "n")
_WEIGHTS = {"error": 5, "answered a question": 4, "abstained on": 4, "gold answer not": 3, "no gold passage": 2,
            "sentences unsupported": 1, "finish_reason": 1}


def severity(row: Scored) -> int:
    return sum(w for reason in row.failures for key, w in _WEIGHTS.items() if key in reason)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) and value <= 1.0 else str(value)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= n else text[: n - 1] + "…"


def question_rows(rows: Sequence[Scored]) -> list[dict[str, Any]]:
    """Per-question records for the JSON report, worst first."""
    out = []
    for r in sorted(rows, key=lambda r: (-severity(r), r.outcome.item.qid)):
        o = r.outcome
        out.append({"id": o.item.qid, "language": o.item.language, "answerable": o.item.answerable,
                    "question": o.item.question, "gold": list(o.item.answers), "gold_docs": list(o.item.gold_docs),
                    "answer": o.answer, "cited_docs": o.cited_docs, "finish_reason": o.finish_reason,
                    "abstained": r.abstained, "contains_gold": r.contains, "f1": r.f1, "cited_gold": r.cited_gold,
                    "sentences": r.sentences, "supported_sentences": r.supported_sentences,
                    "latency_ms": round(o.latency_ms, 1),
                    "ttft_ms": None if o.ttft_ms is None else round(o.ttft_ms, 1),
                    "failures": r.failures})
    return out


def markdown(report: dict[str, Any], rows: Sequence[Scored], *, worst: int = 40) -> str:
    languages = report.get("by_language", {})
    lines = [f"# ragd eval rag: {report['dataset']}", "",
             f"{report['n']} questions ({report['n_unanswerable']} whose documents were held out), "
             f"unanswerable share {report['config']['unanswerable_share']}, seed {report['config']['seed']}, "
             f"{report['config']['target']}, generator `{report['config']['generator']}`.", "",
             "| metric | all | " + " | ".join(languages) + " |",
             "|---|---|" + "---|" * len(languages)]
    for key in KEYS:
        lines.append(f"| {key} | {_cell(report.get(key))} | "
                     + " | ".join(_cell(v.get(key)) for v in languages.values()) + " |")
    if "judge" in report:
        lines += ["", f"Faithfulness judge: {report['judge']}"]
    bad = [r for r in sorted(rows, key=lambda r: (-severity(r), r.outcome.item.qid)) if r.failures][:worst]
    lines += ["", f"## Worst questions ({len(bad)} shown of {sum(bool(r.failures) for r in rows)} with a failure)",
              "", "| # | lang | question | gold | answer | cited | why |", "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(bad, 1):
        o = r.outcome
        gold = " / ".join(o.item.answers[:3]) if o.item.answerable else "(not in the corpus)"
        cited = ", ".join(("**" if d in o.item.gold_docs else "") + d[:10] + ("**" if d in o.item.gold_docs else "")
                          for d in o.cited_docs) or "–"
        lines.append(f"| {i} | {o.item.language} | {_clip(o.item.question, 90)} | {_clip(gold, 60)} | "
                     f"{_clip(o.answer, 220)} | {cited} | {'; '.join(r.failures)} |")
    lines += ["", "Cited documents in bold are gold passages."]
    return "\n".join(lines) + "\n"
