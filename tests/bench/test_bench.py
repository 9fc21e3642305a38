"""``ragd bench``: the measuring machinery (percentiles, profile grouping, both load generators against
a real bare uvicorn server) and quick runs that must write their JSON and PNG."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.bench.common import BARE_BODY_ENV, Load, Server, free_port, run_load, serve, summarize
from lab.bench.http import REPO_ROOT, paraphrases, profile_layers

BODY = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "An answer [1]."}, "finish_reason": "stop"}]}


def test_summarize_reports_nearest_rank_percentiles_in_ms() -> None:
    result = summarize([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert result["n"] == 100
    assert result["p50_ms"] == pytest.approx(50.5)
    assert result["p95_ms"] == pytest.approx(96.0)
    assert result["p99_ms"] == pytest.approx(100.0)
    assert summarize([]) == {"n": 0}


def test_profile_layers_counts_each_sample_for_its_innermost_known_frame() -> None:
    lines = [
        f"run (/x/site-packages/uvicorn/server.py:1);check_sync ({REPO_ROOT}guardrails/engine.py:9);"
        "predict (/x/site-packages/sklearn/base.py:3) 30",
        f"run (/x/site-packages/uvicorn/server.py:1);__call__ ({REPO_ROOT}services/middleware.py:40);"
        "dumps (/usr/lib/python3.11/json/__init__.py:2) 50",
        "run (/x/site-packages/uvicorn/server.py:1) 20",
        "garbage line",
    ]
    profile = profile_layers(lines)
    assert profile["busy_samples"] == 100
    assert profile["layer_share_pct"] == {"JSON encode/decode": 50.0, "guardrails (input rails)": 30.0,
                                          "uvicorn + HTTP parsing": 20.0}
    assert profile["ragd_functions_inclusive_pct"]["check_sync (guardrails/engine.py)"] == 30.0


def test_profile_layers_leaves_out_waiting_threads_and_sees_threadpool_hops() -> None:
    main = "thread (1): MainThread;run (/x/site-packages/uvicorn/server.py:1)"
    lines = [
        f"{main};Runner.run (/usr/lib/python3.11/asyncio/runners.py:118) 60",
        f"{main};run_in_threadpool (/x/site-packages/starlette/concurrency.py:34);"
        "Condition.notify (/usr/lib/python3.11/threading.py:382) 10",
        f"{main};parse (/x/site-packages/httptools/parser.py:3) 30",
        "thread (2): AnyIO worker thread;Queue.get (/usr/lib/python3.11/queue.py:171);"
        "Condition.wait (/usr/lib/python3.11/threading.py:327) 500",
    ]
    profile = profile_layers(lines)
    assert profile["busy_samples"] == 40 and profile["idle_samples"] == 560
    assert profile["event_loop_busy_pct"] == 40.0
    assert profile["layer_share_pct"] == {"uvicorn + HTTP parsing": 75.0,
                                          "sync FastAPI dependency -> threadpool hop": 25.0}


def test_paraphrases_are_distinct() -> None:
    questions = paraphrases()
    assert len(questions) == len(set(questions)) >= 200


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("bare")
    (work / "body.json").write_text(json.dumps(BODY))
    port = free_port()
    env = {**os.environ, BARE_BODY_ENV: str(work / "body.json")}
    server = serve("bare", ["-m", "uvicorn", "--factory", "lab.bench.common:bare_app", "--port", str(port),
                            "--log-level", "warning"], env, work, port=port, ready_path="/health", timeout_s=60)
    yield server
    server.stop()


@pytest.mark.parametrize("tool", ["httpx", "wrk"])
def test_load_generator_drives_a_real_server(bare: Server, tool: str, tmp_path: Path) -> None:
    if tool == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    result = run_load(Load(bare.base_url + "/v1/chat/completions", {"model": "ragd", "messages": []}, 2, 1.0),
                      tmp_path, tool=tool)
    assert result["tool"] == tool
    assert result["requests"] > 10
    assert result["errors"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["rps"] > 0


def test_load_generator_counts_error_statuses(bare: Server, tmp_path: Path) -> None:
    result = run_load(Load(bare.base_url + "/nowhere", {}, 1, 0.5), tmp_path, tool="httpx")
    assert result["requests"] > 0
    assert result["errors"] == result["requests"]


def _ragd_bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", "bench", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=900, env={k: v for k, v in os.environ.items() if not k.startswith("RAGD_")},
                          check=False)


def test_quick_guardrails_bench_writes_json_and_png(tmp_path: Path) -> None:
    done = _ragd_bench("guardrails", "--quick", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "guardrails.json").read_text())
    assert result["quick"] is True
    assert result["machine"]["cpus"] == os.cpu_count()
    assert result["input_check"]["n"] > 0 and result["input_check"]["p50_ms"] > 0
    assert {r["window_chars"] for r in result["stream_holdback_ttft"]} == {0, 64}
    assert (tmp_path / "out" / "guardrails.png").stat().st_size > 1000


@pytest.mark.slow
def test_quick_gateway_bench_sees_exact_and_semantic_hits(tmp_path: Path) -> None:
    done = _ragd_bench("gateway", "--quick", "--profile", "never", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "gateway.json").read_text())
    assert result["summary"]["exact"]["errors"] == 0 and result["summary"]["bare"]["errors"] == 0
    assert result["summary"]["exact"]["rps"] > 0 and result["summary"]["bare"]["rps"] > 0
    assert result["exact_httpx_sequential"]["n"] == 10
    assert result["semantic_httpx_sequential"]["semantic_hits"] > 0
    assert result["semantic_httpx_sequential_no_evidence"]["semantic_hits"] > 0  # the second gateway, check off
    assert (tmp_path / "out" / "gateway.png").exists()


def test_quick_embeddings_bench_writes_json_and_png(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    env["RAGD_E5_ONNX_MODELS_DIR"] = str(Path.cwd() / ".ragd" / "models")  # the suite's e5 graphs
    done = subprocess.run([sys.executable, "-m", "services.cli", "bench", "embeddings", "--quick", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path, timeout=900,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "embeddings.json").read_text())
    assert result["query"]["n"] == 10 and result["passage"]["n"] == 10 and result["batch_of_32_passages"]["n"] == 1
    assert result["query"]["p50_ms"] > 0 and result["passages_per_second"] > 0
    assert result["embedder"] == "e5:multilingual-e5-small"
    assert (tmp_path / "out" / "embeddings.png").stat().st_size > 1000


def test_quick_scale_bench_writes_its_json_and_plot(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGD_")}
    env["RAGD_E5_TORCH_MODELS_DIR"] = str(Path.cwd() / ".ragd" / "models")  # the suite's converted e5
    out = tmp_path / "scale.json"
    args = ["scale", "--quick", "--lean", "--sizes", "150", "--ingest-docs", "2", "--no-bare", "--json", str(out),
            "--out", str(tmp_path / "out")]
    done = subprocess.run([sys.executable, "-m", "services.cli", "bench", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["sizes"]) == {"150"}
    for size, row in result["sizes"].items():
        assert row["chunks"] >= int(size)
        for key in ("hybrid_ms_p50", "hybrid_ms_p95", "bm25_ms_p50", "dense_ms_p50", "build_s", "add100_s"):
            assert row[key] > 0, key
        assert isinstance(row["rss_bytes_per_chunk"], int)
        assert row["add100_chunks"] == 100
    assert {"text", "passage_vectors", "query_vectors"} <= set(result["synthetic"])
    assert result["ingest"]["embed_s"] > 0 and result["ingest"]["ingest_s"] > 0
    assert out.with_suffix(".png").stat().st_size > 1000


def test_scale_skips_a_size_whose_projected_memory_or_build_time_passes_its_cap() -> None:
    from lab.bench.scale import _too_big

    last = {"rss_base_bytes": 900_000_000, "rss_bytes_per_chunk": 13_000, "build_s": 235.0, "chunks": 100_000}
    assert _too_big(last, 1_000_000, 7200, 20) is None
    by_memory = _too_big(last, 1_000_000, 7200, 8)
    assert by_memory is not None and "over --max-rss-gib 8" in by_memory["skipped"]
    assert by_memory["projected_rss_bytes"] == 900_000_000 + 13_000 * 1_000_000
    by_time = _too_big(last, 1_000_000, 600, 20)
    assert by_time is not None and "--max-build-s" in by_time["skipped"]
    assert _too_big(last, 100_000, 1, 0.1) is None  # the sizes the targets are set at always run
