"""PNG figures of the benchmark results (matplotlib, Agg backend, imported only when plotting)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["PLOTS", "plot"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _gateway(result: Mapping[str, Any], ax: Any) -> None:
    summary = result["summary"]
    rows = result["runs"]
    conns = result["connections"]
    left, right = ax
    names = ["bare", "exact"]
    left.bar(names, [summary[n]["p50_ms_c1"] for n in names], color=["#999", "#2a7"])
    semantic = result["semantic_httpx_sequential"].get("p50_ms")
    if semantic is not None:
        left.bar(["semantic\n(httpx)"], [semantic], color="#27a")
    left.axhline(result["targets"]["exact_p50_ms"], ls="--", color="#a22", lw=1, label="exact target")
    left.set_ylabel("p50 latency, 1 connection (ms)")
    left.set_yscale("log")
    left.legend(fontsize=8)
    for n, x in zip(names, range(2), strict=True):
        values = [r["rps"] for r in rows if r["target"] == n and r["connections"] == conns]
        right.scatter([x] * len(values), values, color="k", s=10, zorder=3)
    right.bar(names, [summary[n]["rps"] for n in names], color=["#999", "#2a7"])
    right.set_ylabel(f"requests/s at {conns} connections")
    right.set_title(f"exact / bare = {summary['throughput_ratio']}", fontsize=9)


def _retrieval(result: Mapping[str, Any], ax: Any) -> None:
    rows = result["configs"]
    names = [r["config"].replace(" + ", "\n+ ").replace(" top_k", "\ntop_k") for r in rows]
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r.get("p50_ms", 0) for r in rows], width=0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [r.get("p95_ms", 0) for r in rows], width=0.4, label="p95")
    ax.set_xticks(list(xs), names, fontsize=7)
    ax.set_ylabel("LocalRetriever.retrieve (ms)")
    ax.set_yscale("log")
    ax.set_title(f"{result['dataset']}, embedder {result['embedder']}", fontsize=9)
    ax.legend()


def _guardrails(result: Mapping[str, Any], ax: Any) -> None:
    left, right = ax
    rails = result["input_rail"]
    left.barh(list(rails), [v.get("p50_ms", 0) for v in rails.values()])
    left.set_xlabel("input rail p50 (ms)")
    left.set_title(f"whole input check p50 {result['input_check']['p50_ms']} ms", fontsize=9)
    rows = result["stream_holdback_ttft"]
    for rate in sorted({r["tokens_per_second"] for r in rows}):
        mine = [r for r in rows if r["tokens_per_second"] == rate]
        right.plot([r["window_chars"] for r in mine], [r["added_ms_median"] for r in mine], marker="o",
                   label=f"{rate:.0f} tokens/s")
    right.set_xlabel("hold-back window (characters)")
    right.set_ylabel("time to first token added (ms)")
    right.legend(fontsize=8)


def _embeddings(result: Mapping[str, Any], ax: Any) -> None:
    rows = {"one question": result["query"], "one passage": result["passage"],
            "32 passages, one call": result["batch_of_32_passages"]}
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r.get("p50_ms", 0) for r in rows.values()], width=0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [r.get("p95_ms", 0) for r in rows.values()], width=0.4, label="p95")
    ax.set_xticks(list(xs), list(rows), fontsize=8)
    ax.set_ylabel("LocalRetriever.embed (ms)")
    ax.set_yscale("log")
    ax.set_title(f"{result['embedder']}: {result['passages_per_second']} passages/s in calls of 32", fontsize=9)
    ax.legend()


def _scale(result: Mapping[str, Any], ax: Any) -> None:
    left, right = ax
    rows = sorted((int(n), r) for n, r in result["sizes"].items() if "skipped" not in r)
    xs = [n for n, _ in rows]
    for key, label, style in (("hybrid_ms_p50", "hybrid p50", "o-"), ("hybrid_ms_p95", "hybrid p95", "o--"),
                              ("bm25_ms_p50", "BM25 p50", "s-"), ("dense_ms_p50", "dense p50", "^-")):
        left.plot(xs, [r[key] for _, r in rows], style, label=label)
    bare = [(n, r["bare_fastapi_ms_p50"]) for n, r in rows if "bare_fastapi_ms_p50" in r]
    if bare:
        left.plot([n for n, _ in bare], [v for _, v in bare], "kx", label="bare FastAPI p50 (same run)")
    left.axhline(50, ls=":", color="#a22", lw=1, label="hybrid p50 target")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("chunks in the collection")
    left.set_ylabel("latency (ms)")
    left.legend(fontsize=7)
    right.plot(xs, [r["add100_s"] for _, r in rows], "o-", label="add 100 documents (s)")
    right.plot(xs, [r["build_s"] / 60 for _, r in rows], "s-", label="build (min)")
    right.plot(xs, [r["rss_bytes_per_chunk"] / 1024 for _, r in rows], "^-", label="memory per chunk (KiB)")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("chunks in the collection")
    right.legend(fontsize=7)


PLOTS: dict[str, tuple[Callable[[Mapping[str, Any], Any], None], int]] = {
    "gateway": (_gateway, 2),
    "retrieval": (_retrieval, 1),
    "guardrails": (_guardrails, 2),
    "embeddings": (_embeddings, 1),
    "scale": (_scale, 2),
}


def plot(name: str, result: Mapping[str, Any], path: Path) -> bool:
    """Draw ``result`` of benchmark ``name`` to ``path``; False when that benchmark has no figure."""
    if name not in PLOTS or "error" in result:
        return False
    draw, panels = PLOTS[name]
    plt = _pyplot()
    fig, ax = plt.subplots(1, panels, figsize=(max(5 * panels, 8), 3.8), dpi=110)
    draw(result, ax)
    info = result.get("machine", {})
    fig.suptitle(f"ragd bench {name} — {info.get('cpus')} CPUs, load {info.get('loadavg')}, {info.get('date_utc')}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
