"""PNG figures for docs/guardrails.md (matplotlib, Agg backend, imported only when plotting)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.guardrails.stream_bench import TtftResult

__all__ = ["plot_sources", "plot_ttft"]


def plot_ttft(results: Sequence[TtftResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for rate in sorted({r.tokens_per_second for r in results}):
        rows = sorted((r for r in results if r.tokens_per_second == rate), key=lambda r: r.window_chars)
        ax.plot([r.window_chars for r in rows], [r.added_ms for r in rows], marker="o", label=f"{rate:.0f} tokens/s")
    ax.set_xlabel("hold-back window (characters)")
    ax.set_ylabel("time to first token added (ms)")
    ax.set_title("Streaming output rails: cost of the hold-back window")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def plot_sources(result: dict[str, Any], path: Path, title: str) -> None:
    """Per-source recall (attacks) and false-positive rate (benign) of one eval run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(result["per_source"].items())
    names = [name for name, _ in rows]
    recall = [r["recall"] if r["recall"] is not None else 0.0 for _, r in rows]
    fpr = [r["fpr"] if r["fpr"] is not None else 0.0 for _, r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.4), dpi=120)
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], recall, height=0.4, label="recall (attacks)", color="tab:blue")
    ax.barh([i - 0.2 for i in y], fpr, height=0.4, label="false-positive rate (benign)", color="tab:red")
    ax.set_yticks(list(y), names)
    ax.set_xlim(0, 1)
    ax.axvline(0.9, color="tab:blue", ls=":", lw=1)
    ax.axvline(0.02, color="tab:red", ls=":", lw=1)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
