"""``ragd bench report``: ``docs/benchmarks.md``, written from the recorded runs.

Every table is read from the result files the bench and eval commands write (``bench/results/``,
``lab/clients/results/``), with the machine, time and load each run recorded; nothing here is typed
by hand. ``make bench`` rewrites the page after its runs, and a test checks that the committed page
is what the committed results give.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SECTIONS", "render", "write_report"]

Json = dict[str, Any]


@dataclass(frozen=True)
class Where:
    """The folders of the recorded runs, and the page's folder (links are relative to it)."""

    results: Path
    clients: Path
    page_dir: Path
    project: Path

    def link(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.page_dir)).as_posix()


@dataclass(frozen=True)
class Section:
    """One part of the page: its title, how to rerun it, and its tables from the result folder."""

    title: str
    how: str
    tables: Callable[[Where], list[str]]  # Markdown lines; empty when no run is recorded
    plots: tuple[str, ...] = ()  # pictures of the same runs, relative to the project folder


def _load(path: Path) -> Json | None:
    return json.loads(path.read_text()) if path.exists() else None


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if abs(value) >= 1000 or digits == 0:  # no decimals: stripping zeros would turn 40 into 4
            return f"{value:,.0f}"
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _run_line(result: Json) -> str:
    machine = result.get("machine", {})
    if not machine:
        return ""
    load = machine.get("loadavg")
    return (f"{machine.get('date_utc', '?')}, {machine.get('cpu', '?')} ({machine.get('cpus', '?')} CPUs), "
            f"load {load[0] if load else '?'}, commit {machine.get('git_commit', '?')}")


def _latency(where: Where) -> list[str]:
    from lab.bench import IN_ALL, headline

    results = where.results
    rows: list[list[str]] = []
    runs: list[str] = []
    images: list[str] = []
    for name in IN_ALL:
        result = _load(results / f"{name}.json")
        if result is None:
            continue
        rows += [[name, metric, value, target] for metric, value, target in headline(name, result)]
        runs.append(f"- `{name}`: {_run_line(result)}")
        if (results / f"{name}.png").exists():
            images.append(f"![{name}]({where.link(results / f'{name}.png')})")
    if not rows:
        return []
    return [*_table(["benchmark", "metric", "value", "target"], rows), "", "Runs:", *runs, "", *images]


def _fixed(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _variant(settings: Json) -> str:
    """What differs from the default search, from the run's recorded settings."""
    parts = [f"{settings.get('embedder_backend')} embedder"] if settings.get("embedder_backend") != "e5-torch" else []
    if settings.get("reranker_model"):
        parts.append(f"+ trained cross-encoder on the top {settings.get('rerank_top_n')}")
    if settings.get("query_embedder_model"):
        parts.append("+ trained query side")
    return " ".join(parts) or "default"


def _retrieval_quality(where: Where) -> list[str]:
    results = where.results
    rows = []
    for path in sorted(results.glob("retrieval-eval-*.json")):
        r = json.loads(path.read_text())
        rows.append([str(r.get("dataset")), _variant(r.get("settings", {})), _num(r.get("queries")),
                     _fixed(r.get("ndcg@10"), 4), _fixed(r.get("recall@100"), 4), _fixed(r.get("mrr@10"), 4),
                     f"{_num(r.get('latency_ms_p50'), 1)} / {_num(r.get('latency_ms_p95'), 1)}", f"`{path.name}`"])
    if not rows:
        return []
    return _table(["dataset", "configuration", "queries", "nDCG@10", "Recall@100", "MRR@10", "p50 / p95 ms",
                   "report"], rows)


_ANSWER_COLUMNS = (("answer_contains_gold", "contains gold"), ("answer_f1", "F1"), ("cited_gold", "cited gold"),
                   ("citation_precision", "citation precision"), ("faithfulness", "faithfulness"),
                   ("abstain_unanswerable", "declines held-out"), ("held_out_answered", "held-out answered right"),
                   ("abstain_answerable", "false abstention"), ("finish_stop", "finish stop"),
                   ("latency_ms_p50", "p50 ms"), ("ttft_ms_p50", "TTFT p50 ms"))


def _answers(where: Where) -> list[str]:
    results = where.results
    rows = []
    for path in sorted((results / "answers").glob("*.json")):
        r = json.loads(path.read_text())
        if "answer_contains_gold" not in r:
            continue
        config = r.get("config", {})
        rows.append([str(r.get("dataset")), str(config.get("generator", "?")), _num(r.get("n")),
                     *(_num(r.get(key), 0) if key.endswith("_ms_p50") or key == "held_out_answered"
                       else _fixed(r.get(key))
                       for key, _ in _ANSWER_COLUMNS),
                     f"`answers/{path.name}`"])
    if not rows:
        return []
    targets = ["**target**", "", "", ">= 0.75", "", ">= 0.90", "", ">= 0.90", ">= 0.80", "", "<= 0.05", ">= 0.98",
               "<= 2,000", "<= 1,000", ""]
    return _table(["dataset", "generator", "n", *(label for _, label in _ANSWER_COLUMNS), "report"], [*rows, targets])


def _guardrails_lso(where: Where) -> list[str]:
    results = where.results
    r = _load(results / "guardrails-lso.json")
    if r is None:
        return []
    rows = []
    for language, s in r.get("summary", {}).items():
        rows.append([language, _fixed(s.get("recall_mean")), _fixed(s.get("recall_block_or_flag_mean")),
                     _fixed(s.get("fpr_mean")), f"{_fixed(s.get('fpr_worst'))} ({s.get('fpr_worst_family')})",
                     _fixed(s.get("flag_rate_benign_mean"))])
    scored = r.get("scored_by", {})
    whole = sorted(f for f, how in scored.items() if "whole pool" in str(how))
    note = [f"Evaluation-only families (never in any training data, scored by the model trained on the whole "
            f"pool): {', '.join(whole)}."] if whole else []
    return [*_table(["language", "block recall (mean of families)", "blocked or flagged", "block FPR (mean)",
                     "block FPR (worst family)", "benign flagged"], rows), "",
            f"Protocol: {r.get('protocol')}; `bench/results/guardrails-lso.json` holds every family.", *note]


def _cache_precision(where: Where) -> list[str]:
    results = where.results
    r = _load(results / "cache-evidence-eval.json")
    if r is None:
        return []
    rows = []
    for split, at in r.get("at_chosen", {}).items():
        for kind in ("pairwise", "pairwise_evidence"):
            s = at.get(kind)
            if s:
                threshold = " / ".join(f"{lang} {t}" for lang, t in at["thresholds"].items()) \
                    if at.get("thresholds") else _num(at.get("threshold"))
                rows.append([split, "evidence-checked" if kind.endswith("evidence") else "threshold and guards",
                             threshold, _num(s.get("pairs")), _fixed(s.get("hit_rate")),
                             _fixed(s.get("false_hit_rate"))])
    out = _table(["pair set", "served when", "threshold", "pairs", "paraphrase hit rate", "false hit rate"], rows)
    out += ["", f"Shipped settings: `{json.dumps(r.get('configured'))}` (chosen by {r.get('threshold_source')})."]
    out += _cache_over_http(results)
    latency = _load(results / "cache-evidence-latency.json")
    if latency is not None:
        lrows = []
        modes = {"evidence_on": "evidence on", "evidence_after_rails": "evidence on, retrieval after the rails",
                 "evidence_off": "evidence off"}
        for mode, label in modes.items():
            m = latency.get(mode)
            if m is None:
                continue
            for kind in ("semantic_hit", "exact_hit"):
                s = m.get(kind, {})
                lrows.append([kind.replace("_", " "), label, _num(s.get("n")),
                              _num(s.get("p50_ms"), 2), _num(s.get("p95_ms"), 2)])
        out += ["", f"`{latency.get('path')}`, load average {latency.get('load_average_1m_at_end')} at the end:", "",
                *_table(["hit", "evidence check", "n", "p50 ms", "p95 ms"], lrows)]
    return out


def _cache_over_http(results: Path) -> list[str]:
    r = _load(results / "cache-http-eval.json")
    if r is None:
        return []
    rows = []
    for split, s in r.get("subsets", {}).items():
        p, c, w = s["pairwise"], s["crowded"], s["crowded_corpus"]
        false = {i for view in (p, c, w) for i in view["false_hits"]}
        otherwise = {i for view in (p, c, w) for i in view["false_hits_answered_otherwise"]}
        rows.append([split, f"{s['paraphrases']} + {s['near_misses']}", _fixed(p["hit_rate"]),
                     _fixed(p["false_hit_rate"]), _fixed(c["false_hit_rate"]), _fixed(w["false_hit_rate"]),
                     f"{len(otherwise)} of {len(false)}"])
    return ["", "The pairs about a corpus through a running gateway (`ragd eval cache --url`, "
                "`bench/results/cache-http-eval.json`): what its `x-ragd-cache` header says, at its own settings; "
                "crowded among the split's cached questions (as above) and among every cached question about the "
                "corpus:", "",
            *_table(["pair set", "pairs", "paraphrase hit rate", "false hit rate", "crowded false",
                     "crowded false, whole corpus", "false hits answered otherwise than past the cache"], rows)]


def _overload(where: Where) -> list[str]:
    rows = []
    for path in sorted(where.clients.glob("locust-*.json")):
        r = json.loads(path.read_text())
        tally, seconds = r.get("tally", {}), r.get("seconds", {})
        answered = seconds.get("answered_s", {})
        load = r.get("load_average_1_5_15", {}).get("start")
        rows.append([path.stem, _num(r.get("users")), _num(r.get("run_time")), _num(tally.get("answered_in_time")),
                     _num(tally.get("refused_fast")), _num(sum(v for k, v in tally.items()
                                                               if k not in ("answered_in_time", "refused_fast"))),
                     _num(answered.get("p50")), _num(r.get("worst_seconds", {}).get("answered_s")),
                     _num(r.get("worst_seconds", {}).get("refused_s")), _num(load[0], 1) if load else "n/a"])
    if not rows:
        return []
    return _table(["run", "users", "seconds", "answered in time", "refused fast (429)", "other outcomes",
                   "answer p50 s", "slowest answer s", "slowest refusal s", "load at start"], rows)


def _gib(value: Any) -> str:
    return "" if value is None else f"{value / 1024**3:.1f}"


def _scale(where: Where) -> list[str]:
    r = _load(where.results / "scale.json")
    if r is None:
        return []
    rows = []
    for size, m in sorted(r.get("sizes", {}).items(), key=lambda item: int(item[0])):
        if "skipped" in m:
            rows.append([_num(int(size)), f"not run: {m['skipped']}", "", "", "", "", "", "", ""])
            continue
        bare = m.get("bare_fastapi_ms_p50")
        rows.append([_num(int(size)), f"{_num(m.get('hybrid_ms_p50'), 1)} / {_num(m.get('hybrid_ms_p95'), 1)}",
                     _num(m.get("bm25_ms_p50"), 1), _num(m.get("dense_ms_p50"), 1),
                     _num(bare, 1) if bare is not None else "", _num(m.get("rss_bytes_per_chunk")),
                     _gib(m.get("maxrss_bytes")), _num(m.get("build_s"), 1), _num(m.get("add100_s"), 2)])
    out = _table(["chunks", "hybrid p50 / p95 ms", "BM25 p50 ms", "dense p50 ms", "bare FastAPI p50 ms, same run",
                  "memory bytes per chunk", "peak process memory GiB", "build s", "add 100 documents s"], rows)
    out.append("")
    out += ["Targets at 100k chunks: hybrid p50 <= 50 ms, p95 <= 120 ms; adding 100 documents <= 10 s plus their "
            "embedding.", ""]
    ingest = r.get("ingest")
    if ingest:
        out += [f"Ingest overhead over the embedders' own time on the same passages: {ingest.get('overhead_pct')} % "
                f"({ingest.get('ingest_s')} s against {ingest.get('embed_s')} s, {ingest.get('documents')} "
                f"documents; target <= 15 %). Embedding 100 such documents: {ingest.get('embed_s_per_100_docs')} s.",
                ""]
    synthetic = r.get("synthetic") or {}
    if synthetic:
        out += ["What is real and what is synthetic, by part:", ""]
    out += [f"- {key.replace('_', ' ')}: {value}" for key, value in synthetic.items()]
    out += ["", f"Run: {_run_line(r)}"]
    return out


def _peers(where: Where) -> list[str]:
    r = _load(where.results / "peers.json")
    if r is None:
        return []
    out: list[str] = []
    cache = r.get("cache")
    if cache:
        out += _table(["answer cache hit", "req/s", "p50 ms"],
                      [["ragd exact hit", _num(cache.get("ragd_rps"), 1), _num(cache.get("ragd_ms_p50"), 2)],
                       ["LiteLLM proxy + Redis cache", _num(cache.get("litellm_rps"), 1),
                        _num(cache.get("litellm_ms_p50"), 2)]])
        out.append("")
    retrieval = r.get("retrieval")
    if retrieval:
        out += _table(["dataset", "ragd nDCG@10", "LlamaIndex nDCG@10", "ragd p50 ms", "LlamaIndex p50 ms"],
                      [[name, _fixed(d.get("ragd_ndcg@10"), 4), _fixed(d.get("llamaindex_ndcg@10"), 4),
                        _num(d.get("ragd_ms_p50"), 1), _num(d.get("llamaindex_ms_p50"), 1)]
                       for name, d in retrieval.items() if isinstance(d, dict)])
        out.append("")
    semantic = r.get("semantic_cache")
    if semantic:
        out += _table(["semantic cache", "false hit rate", "paraphrase hit rate"],
                      [["ragd", _fixed(semantic.get("ragd_false_hit_rate")),
                        _fixed(semantic.get("ragd_paraphrase_hit_rate"))],
                       [str(semantic.get("peer", "peer")), _fixed(semantic.get("peer_false_hit_rate")),
                        _fixed(semantic.get("peer_paraphrase_hit_rate"))]])
        out.append("")
    skipped = r.get("skipped") or {}
    out += [f"- {peer}: {why}" for peer, why in skipped.items()]
    if r.get("machine"):
        out += ["", f"Run: {_run_line(r)}"]
    return out


_FORMER_RERANK = "standard-op graph, batches of 32 (former)"


def _runtimes(where: Where) -> list[str]:
    rows = []
    for path in sorted(where.results.glob("e5_passages*.json")):
        r = json.loads(path.read_text())
        for name, m in r.get("runtimes", {}).items():
            compared: tuple[str, Json] = next(((k[3:], v) for k, v in m.items() if k.startswith("vs_")), ("", {}))
            ref, vs = compared
            cosine = f"{_fixed(vs.get('cos_mean'), 4)} / {_fixed(vs.get('cos_min'), 4)} ({ref})" if vs else "reference"
            rows.append([f"`{path.name}`", name, _num(r.get("passages")), _num(m.get("passages_per_s"), 2), cosine,
                         _fixed(m.get("scifact_dense_ndcg@10")), _fixed(m.get("korquad_dense_ndcg@10"))])
    out = _table(["run", "e5 passage runtime", "passages", "passages/s", "cosine to another runtime (mean / min)",
                  "SciFact dense nDCG@10", "KorQuAD dense nDCG@10"], rows) if rows else []
    rerank = []
    for path in sorted(where.results.glob("rerank_onnx*.json")):
        r = json.loads(path.read_text())
        load = r.get("load_average_1m", {}).get("median")
        for name, m in r.get("runtimes", {}).items():
            graph = ("torch" if name.startswith("torch") else _FORMER_RERANK if name.endswith("-former")
                     else r.get("graph", _FORMER_RERANK))
            vs = m.get("vs_onnx-fp32")
            agree = f"{_fixed(vs.get('spearman_median'), 3)} / {_fixed(vs.get('spearman_min'), 3)}" if vs else "n/a"
            rerank.append([f"`{path.name}`", graph, str(r.get("data", "scifact")), _num(r.get("max_length")), name,
                           f"{_num(m.get('ms_p50'), 0)} / {_num(m.get('ms_p95'), 0)}", _num(m.get("cpu_ms_p50"), 0),
                           agree, _num(load, 1)])
    if rerank:
        out += ["", *_table(["run", "ONNX graph / runtime", "queries", "pair tokens", "runtime",
                             "N=20 wall p50 / p95 ms", "CPU ms per call p50", "Spearman to onnx-fp32 (median / min)",
                             "load avg"], rerank)]
    return out + _rerank_precision(where)


def _rerank_precision(where: Where) -> list[str]:
    r = _load(where.results / "rerank_precision_ndcg.json")
    if r is None:
        return []
    first = r.get("first_stage", {})
    rows = [[name, _fixed(m.get("ndcg@10"), 4), f"{r.get('delta_ndcg_vs_fp32', {}).get(name, 0.0):+.4f}",
             _fixed(m.get("mrr@10"), 4),
             _num(m.get("latency_ms_p50"), 0)] for name, m in r.get("runs", {}).items()]
    rows.append(["first stage alone (no reranker)", _fixed(first.get("ndcg@10"), 4), "", _fixed(first.get("mrr@10"), 4),
                 ""])
    return ["", f"The reranker's precision against nDCG@10 (`bench/results/rerank_precision_ndcg.json`: "
                f"{r.get('dataset')}, {r.get('queries')} queries, top {r.get('rerank_top_n')} in the reranker's own "
                f"order; {r.get('model')}):", "",
            *_table(["rerank precision", "nDCG@10", "vs fp32", "MRR@10", "query p50 ms (loaded)"], rows)]


def _load_run(where: Where) -> list[str]:
    folder = where.results / "load"
    stats, tally = folder / "locust_stats.csv", _load(folder / "tally.json")
    if not stats.exists() or tally is None:
        return []
    rows = [[row["Name"], _num(int(row["Request Count"])), _num(int(row["Failure Count"])), row["50%"], row["95%"],
             _num(float(row["Requests/s"]), 1)] for row in csv.DictReader(stats.open(encoding="utf-8"))]
    outcomes = [[name, *(_num(s.get(f"cache_{kind}", 0)) for kind in ("exact", "semantic", "miss")),
                 _num(s.get("status_429", 0))] for name, s in tally.get("scenarios", {}).items()]
    return [*_table(["request", "count", "failures", "p50 ms", "p95 ms", "req/s"], rows), "",
            f"{tally.get('users')} users for {tally.get('run_time')} s, weights {json.dumps(tally.get('weights'))}; "
            f"outcomes {json.dumps(tally.get('tally'))}.", "",
            *_table(["scenario", "exact hits", "semantic hits", "misses", "429"], outcomes)]


SECTIONS: list[Section] = [
    Section("Latency (`ragd bench`)",
            "`make bench` (= `ragd bench all --out bench/results`), or `ragd bench gateway|cache|retrieval|guardrails|"
            "embeddings`. Each run is bounded, on loopback, and records the machine and its load; p50 unless said.",
            _latency),
    Section("Retrieval quality (`ragd eval retrieval`)",
            "`ragd eval retrieval --dataset ../shared/data/<set> --json bench/results/retrieval-eval-<set>.json`; "
            "what each configuration is and how to rerun it: [retrieval.md](retrieval.md).",
            _retrieval_quality, ("docs/img/retrieval_scifact.png", "docs/img/retrieval_korquad.png")),
    Section("Model runtimes without torch (e5 passages, the cross-encoder)",
            "`python -m lab.retriever.e5_passages` and `python -m lab.retriever.rerank_bench`; what each runtime "
            "is and how the runs were made: [retrieval.md](retrieval.md#runtimes-without-torch).",
            _runtimes),
    Section("Answers (`ragd eval rag`)",
            "`ragd eval rag --dataset ../shared/data/<set> --limit 300 --unanswerable-share 0.2 --json ...`; the "
            "protocol, the abstention calibration and the per-question reports: [answers.md](answers.md).",
            _answers, ("docs/img/answers_paths.png", "docs/img/abstention_tradeoff.png")),
    Section("Guardrails on sources they never saw (`ragd eval guardrails --lso`)",
            "Each family is scored by a model trained without it; protocol and families: "
            "[guardrails.md](guardrails.md).",
            _guardrails_lso, ("bench/results/guardrails-lso.png",)),
    Section("Semantic cache precision (`ragd eval cache`)",
            "`ragd eval cache --json bench/results/cache-evidence-eval.json`; the pair sets and the protocol: "
            "[cache.md](cache.md). Latency of a hit with and without the evidence check: "
            "`python -m lab.cache.latency`.",
            _cache_precision, ("docs/img/cache_thresholds.png",)),
    Section("Scale (`ragd bench scale`)",
            "`make bench-scale` (= `ragd bench scale --sizes 10000,100000`, ~6 min) or `make bench-scale-1m` (the "
            "same with 1,000,000 chunks and a 20 GiB memory cap, 1-1.5 h): retrieval latency, memory and incremental "
            "adds by collection size; the method: [retrieval.md](retrieval.md#scale-benchmark-method).",
            _scale, ("bench/results/scale.png",)),
    Section("Side by side with the peers (`make bench-peers`)",
            "`ragd bench peers`: each peer installed from PyPI into its own virtualenv and run on the same machine "
            "in the same run as ragd; how each row is measured: [peers.md](peers.md).",
            _peers),
    Section("Load (`make load`, the chat-product mix)",
            "Locust's scenarios in `lab/load/locustfile.py` against `ragd serve --demo`; how to run them against "
            "any deployment: [load.md](load.md).",
            _load_run, ("bench/results/load/load.png",)),
    Section("Overload (Locust, `make test-clients`)",
            "10 users asking fresh questions against `ragd serve --demo`; every request must be answered within "
            "its deadline or refused with a 429 within 100 ms (`lab/clients/locust_check.py`).",
            _overload),
]


def _sections(where: Where) -> Iterator[str]:
    for section in SECTIONS:
        lines = section.tables(where)
        if not lines:
            continue
        plots = [where.project / plot for plot in section.plots if (where.project / plot).exists()]
        if plots:
            lines = [*lines, "", *(f"![{plot.stem}]({where.link(plot)})" for plot in plots)]
        yield f"## {section.title}\n\n{section.how}\n\n" + "\n".join(lines) + "\n"


def render(results: Path, *, clients: Path | None = None, page: Path = Path("docs/benchmarks.md")) -> str:
    """The page for the runs in ``results`` (and Locust's in ``clients``, default ``lab/clients/results``
    beside ``results``'s project), its links relative to ``page``."""
    project = results.parent.parent
    where = Where(results, clients or project / "lab" / "clients" / "results", page.parent, project)
    head = ("# Benchmarks\n\nGenerated by `ragd bench report` from the recorded runs in `bench/results/` and "
            "`lab/clients/results/`; do not edit by hand. Timed numbers come from shared 2-core machines whose load "
            "each run records: read them as medians under that load, not as capacity.\n")
    return "\n".join([head, *_sections(where)])


def write_report(results: Path, page: Path) -> int:
    page.write_text(render(results, page=page))
    print(f"wrote {page}")
    return 0
