"""A bar chart of ``ragd eval rag`` reports side by side (answer paths, datasets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["METRICS", "label_of", "plot_reports"]

METRICS = ("answer_contains_gold", "cited_gold", "faithfulness", "abstain_unanswerable", "abstain_answerable",
           "finish_stop")


def label_of(report: dict[str, Any]) -> str:
    return f"{report['dataset'].split(':')[0]} · {report['config']['generator']} (n={report['n']})"


def plot_reports(reports: Sequence[dict[str, Any]], out: Path, *, title: str = "ragd eval rag") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.8))
    width = 0.8 / max(len(reports), 1)
    for i, report in enumerate(reports):
        values = [report.get(m) or 0.0 for m in METRICS]
        xs = [j + i * width for j in range(len(METRICS))]
        p50 = report.get("latency_ms_p50")
        bars = ax.bar(xs, values, width, label=f"{label_of(report)}, p50 {p50:.0f} ms" if p50 else label_of(report))
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=6, rotation=90, padding=2)
    ax.set_xticks([j + width * (len(reports) - 1) / 2 for j in range(len(METRICS))])
    ax.set_xticklabels([m.replace("_", "\n") for m in METRICS], fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_title(title + " (abstain_answerable: lower is better)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
