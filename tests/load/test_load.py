"""``make load`` (lab/load): the target and counter arithmetic, the plot from Locust's CSV, and (slow tier)
a few seconds of the whole mix, Locust from its own virtualenv, against ``ragd serve --demo``."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.clients.server import ragd_server
from lab.load.plot import plot_run
from lab.load.run import REPO, counter_deltas, summary_lines, target_url

LOCUST_PYTHON = Path(os.environ.get("RAGD_LOCUST_PYTHON", REPO / ".clients" / "locust" / "bin" / "python"))
HISTORY_COLUMNS = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", "50%", "95%", "99%"]
STATS_COLUMNS = ["Type", "Name", "Request Count", "Failure Count", "50%", "95%", "Requests/s"]


def test_target_is_a_url_as_given_or_a_host_with_the_port() -> None:
    assert target_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert target_url("http://gateway.example:8080/", 8000) == "http://gateway.example:8080"
    assert target_url("https://ragd.example", 8000) == "https://ragd.example"


def test_counter_deltas_keep_what_grew_during_the_run() -> None:
    before = {"ragd_cache_lookups_total": {"exact": 2.0, "miss": 5.0}, "ragd_rate_limited_total": {}}
    after = {"ragd_cache_lookups_total": {"exact": 9.0, "miss": 5.0, "semantic": 1.0},
             "ragd_rate_limited_total": {"generator_queue": 3.0}}
    assert counter_deltas(before, after) == {"ragd_cache_lookups_total": {"exact": 7.0, "semantic": 1.0},
                                             "ragd_rate_limited_total": {"generator_queue": 3.0}}


def _write(path: Path, columns: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def test_plot_and_summary_read_locusts_csv(tmp_path: Path) -> None:
    history = _write(tmp_path / "h.csv", HISTORY_COLUMNS, [
        [1000, 0, "", "Aggregated", 0, 0, "N/A", "N/A", "N/A"],
        [1001, 4, "POST", "chat: exact", 3.0, 0, 5, 9, 12],
        [1001, 4, "", "Aggregated", 6.0, 0.5, 20, 90, 120],
        [1002, 4, "", "Aggregated", 7.0, 0, 18, 80, 100]])
    stats = _write(tmp_path / "s.csv", STATS_COLUMNS, [
        ["POST", "chat: exact", 10, 0, 5, 9, 3.0], ["POST", "chat: fresh", 4, 1, 90, 200, 1.0],
        ["POST", "chat: never asked", 0, 0, 0, 0, 0.0], ["", "Aggregated", 14, 1, 9, 200, 4.0]])
    png = plot_run(history, stats, tmp_path / "load.png", title="test")
    assert png.read_bytes().startswith(b"\x89PNG")
    lines = summary_lines(stats, {"scenarios": {"exact": {"requests": 10, "cache_exact": 8, "cache_miss": 2}}},
                          {"ragd_cache_lookups_total": {"exact": 8.0}})
    assert any(line.startswith("chat: fresh") and " 4 " in line for line in lines)
    assert "x-ragd-cache, exact: {'exact': 8, 'miss': 2}" in lines


@pytest.mark.slow
@pytest.mark.e2e
def test_a_short_mixed_load_run_end_to_end(tmp_path: Path) -> None:
    if not LOCUST_PYTHON.exists():
        pytest.skip(f"no Locust virtualenv at {LOCUST_PYTHON} (make load or make test-clients builds it)")
    out = tmp_path / "results"
    with ragd_server(sys.executable, REPO, tmp_path / "server") as server:
        done = subprocess.run([sys.executable, "-m", "lab.load", "--host", server.base_url, "--users", "4",
                               "--spawn-rate", "4", "--run-time", "12s", "--out", str(out), "--locust-python",
                               str(LOCUST_PYTHON)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert (out / "tally.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    tally = json.loads((out / "tally.json").read_text())
    assert set(tally["tally"]) <= {"answered_in_time", "refused_fast", "refused_slow"}, tally["tally"]
    scenarios = tally["scenarios"]
    assert {"exact", "fresh", "stream"} <= set(scenarios), scenarios
    assert scenarios["exact"].get("cache_exact", 0) > 0  # asked again, answered from the cache
    assert scenarios["fresh"].get("cache_miss", 0) > 0
    names = {row["Name"] for row in csv.DictReader((out / "locust_stats.csv").open())}
    assert {"chat: exact", "chat: stream", "stream: first content", "Aggregated"} <= names
    server_counts = json.loads((out / "server.json").read_text())["counters"]
    assert server_counts["ragd_cache_lookups_total"].get("exact", 0) > 0
    assert (out / "load.png").read_bytes().startswith(b"\x89PNG")
