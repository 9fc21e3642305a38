"""The protocol's PNG: block recall, blocked-or-flagged recall and block FPR per held-out family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_protocol"]


def plot_protocol(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"{name} ({lang})", r) for name, langs in result["families"].items() for lang, r in langs.items()
            if r["attacks"] >= 20 or r["benign"] >= 20]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.32 * len(rows) + 1.5), sharey=True)
    y = list(range(len(rows)))
    labels = [name for name, _ in rows]
    rec = [r["recall"] if r["attacks"] >= 20 else float("nan") for _, r in rows]
    both = [r["recall_block_or_flag"] if r["attacks"] >= 20 else float("nan") for _, r in rows]
    fpr = [r["fpr"] if r["benign"] >= 20 else float("nan") for _, r in rows]
    flag = [r["flag_rate_benign"] if r["benign"] >= 20 else float("nan") for _, r in rows]
    left.barh([v + 0.2 for v in y], both, height=0.4, color="#9ecae1", label="blocked or flagged")
    left.barh([v - 0.2 for v in y], rec, height=0.4, color="#3182bd", label="blocked")
    left.axvline(0.65, ls=":", c="k")
    left.axvline(0.85, ls=":", c="grey")
    left.set_xlabel("recall (attacks)")
    left.set_yticks(y, labels, fontsize=8)
    left.legend(fontsize=8, loc="lower right")
    right.barh([v + 0.2 for v in y], flag, height=0.4, color="#fdd0a2", label="flagged")
    right.barh([v - 0.2 for v in y], fpr, height=0.4, color="#e6550d", label="blocked (FPR)")
    right.axvline(0.02, ls=":", c="k")
    right.axvline(0.04, ls=":", c="grey")
    right.set_xlabel("share of benign texts")
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"leave-source-out: each family scored by a model that never saw it; cuts {result['cuts']}",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
