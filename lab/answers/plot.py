"""A bar chart of ``ragd eval rag`` reports side by side (answer paths, datasets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["METRICS", "label_of", "plot_reports", "plot_tradeoff"]

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


def plot_tradeoff(curves: dict[str, Any], out: Path, *, target: tuple[float, float] = (0.05, 0.80)) -> None:
    """Declined held-out questions against false abstentions as the abstention threshold moves, one line per
    language, the chosen threshold marked, the target region shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for language, curve in sorted(curves.items()):
        xs, ys = zip(*curve["curve"], strict=True) if curve["curve"] else ((), ())
        line, = ax.step(xs, ys, where="post", label=f"{language} (n={curve['n']}, {curve['n_unanswerable']} held out)")
        at = curve["at_threshold"]
        ax.plot([at["abstain_answerable"]], [at["abstain_unanswerable"]], "o", color=line.get_color())
        ax.annotate(f"chosen: {at['abstain_unanswerable']:.2f} @ {at['abstain_answerable']:.3f}",
                    (at["abstain_answerable"], at["abstain_unanswerable"]), textcoords="offset points",
                    xytext=(8, -12), fontsize=8, color=line.get_color())
    ax.axvspan(0, target[0], ymin=target[1], ymax=1.0, color="green", alpha=0.08, label="target")
    ax.set_xlim(0, 0.3)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("abstain_answerable (false abstentions)")
    ax.set_ylabel("abstain_unanswerable (held-out questions declined)")
    ax.set_title("abstention trade-off on the evaluated questions (reported, not chosen on)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
