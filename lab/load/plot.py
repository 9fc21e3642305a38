"""The plot of one Locust run from its CSV: throughput and users over time, latency percentiles over
time, and each request's p50 / p95 over the whole run."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = ["plot_run", "read_rows"]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # Locust writes "N/A" before a percentile has samples
        return None


def plot_run(history_csv: Path, stats_csv: Path, out: Path, *, title: str) -> Path:
    """Draw ``out`` from Locust's ``*_stats_history.csv`` and ``*_stats.csv``."""
    history = [r for r in read_rows(history_csv) if r["Name"] == "Aggregated"]
    stats = [r for r in read_rows(stats_csv) if r["Name"] != "Aggregated" and int(r["Request Count"] or 0)]
    start = int(history[0]["Timestamp"]) if history else 0
    t = [int(r["Timestamp"]) - start for r in history]
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(10, 11))
    top.plot(t, [_number(r["Requests/s"]) or 0 for r in history], label="requests/s")
    top.plot(t, [_number(r["Failures/s"]) or 0 for r in history], label="failures/s", color="tab:red")
    users = top.twinx()
    users.plot(t, [int(r["User Count"]) for r in history], color="tab:gray", linestyle=":", label="users")
    users.set_ylabel("users")
    top.set_ylabel("per second")
    top.set_title(title)
    top.legend(loc="upper left")
    for column, style in (("50%", "-"), ("95%", "--"), ("99%", ":")):
        middle.plot(t, [_number(r[column]) for r in history], linestyle=style, label=f"p{column[:-1]}")
    middle.set_yscale("log")
    middle.set_ylabel("ms (all requests, recent window)")
    middle.set_xlabel("seconds into the run")
    middle.legend(loc="upper left")
    names = [r["Name"] for r in stats]
    y = range(len(names))
    bottom.barh([i + 0.2 for i in y], [_number(r["95%"]) or 0 for r in stats], height=0.4, label="p95")
    bottom.barh([i - 0.2 for i in y], [_number(r["50%"]) or 0 for r in stats], height=0.4, label="p50")
    bottom.set_yticks(list(y), [f"{n} ({r['Request Count']})" for n, r in zip(names, stats, strict=True)])
    bottom.set_xscale("log")
    bottom.set_xlabel("ms over the whole run (requests in brackets)")
    bottom.legend(loc="best")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
