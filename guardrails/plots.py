"""PNG figures for docs/guardrails.md (matplotlib, Agg backend, imported only when plotting)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from guardrails.stream_bench import TtftResult

__all__ = ["plot_ttft"]


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
