"""``make load``: a bounded, headless Locust run of :mod:`lab.load.locustfile` against one ragd.

The target is ``--host`` (a URL, or a host name with ``--port``). When nothing answers there and the
host is loopback, ``ragd serve --demo`` (what ``make run`` starts) is started for the run and stopped
after it. Locust runs from its own virtualenv (``--locust-python``, built by the Makefile from
``lab/clients/requirements/locust.txt``). Written to ``--out``: Locust's CSV (``locust_stats.csv``,
``locust_stats_history.csv``, ``locust_failures.csv``), the scenario tallies (``tally.json``), the
gateway's own counters over the run when its ``/metrics`` answers (``server.json``), and the plot
(``load.png``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from lab.clients.server import stop_process, wait_http
from lab.load.plot import plot_run

__all__ = ["LOCUSTFILE", "REPO", "SERVER_COUNTERS", "counter_deltas", "main", "scrape_counters", "target_url"]

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# the gateway's counters a run is read by (services/telemetry.py), each by its one label
SERVER_COUNTERS = {"ragd_cache_lookups_total": "outcome", "ragd_rate_limited_total": "reason",
                   "ragd_cache_stores_total": "result", "ragd_degradations_total": "dependency"}


def target_url(host: str, port: int) -> str:
    """``http://host:port`` for a bare host name, else the URL as given (without a trailing slash)."""
    if "://" in host:
        return host.rstrip("/")
    return f"http://{host}:{port}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def ragd_running(url: str, out: Path) -> Iterator[bool]:
    """Yield whether this run started the server: a loopback target that does not answer gets
    ``ragd serve --demo`` on its port (its log in ``out/ragd.log``) until the block ends, over a fresh data
    dir (unless ``RAGD_DATA_DIR`` names one), so every run starts from the demo corpus alone."""
    if _answers(url):
        yield False
        return
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK:
        raise SystemExit(f"ragd load: nothing answers {url}/health (start the deployment, or point --host at it)")
    port = str(parts.port or 80)
    log = out / "ragd.log"
    print(f"ragd load: nothing answers {url}; starting `ragd serve --demo` on port {port} (log: {log})", flush=True)
    data = None if "RAGD_DATA_DIR" in os.environ else tempfile.mkdtemp(prefix="ragd-load-")
    env = {**os.environ, **({"RAGD_DATA_DIR": data} if data else {})}
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "--demo", "--host",
                                    parts.hostname or "127.0.0.1", "--port", port], cwd=REPO, stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        wait_http(url + "/ready", timeout_s=900, process=process, log=log)
        yield True
    finally:
        stop_process(process)
        if data:
            shutil.rmtree(data, ignore_errors=True)


def scrape_counters(url: str) -> dict[str, dict[str, float]] | None:
    """The :data:`SERVER_COUNTERS` of ``url``'s ``/metrics`` by label value, or None where it is not served
    (a gateway on a public interface keeps its metrics on its metrics port)."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    found: dict[str, dict[str, float]] = {name: {} for name in SERVER_COUNTERS}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = SERVER_COUNTERS.get(sample.name)
            if label is not None:
                value = sample.labels.get(label, "")
                found[sample.name][value] = found[sample.name].get(value, 0.0) + sample.value
    return found


def counter_deltas(before: dict[str, dict[str, float]],
                   after: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """What each counter of :func:`scrape_counters` grew by between two scrapes (zero rows dropped)."""
    deltas: dict[str, dict[str, float]] = {}
    for name, values in after.items():
        grown = {k: v - before.get(name, {}).get(k, 0.0) for k, v in values.items()}
        deltas[name] = {k: v for k, v in sorted(grown.items()) if v}
    return deltas


def _seconds(run_time: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(run_time[:-1]) * units[run_time[-1]] if run_time[-1] in units else int(run_time)


def run_locust(args: argparse.Namespace, url: str, out: Path) -> int:
    command = [args.locust_python, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(args.users),
               "-r", str(args.spawn_rate), "-t", args.run_time, "--stop-timeout", "30", "--host", url,
               "--csv", str(out / "locust"), "--csv-full-history", "--json-out", str(out / "tally.json"),
               "--only-summary", "--loglevel", "WARNING", "--ingest-collection", args.ingest_collection]
    if args.tags:
        command += ["--tags", *args.tags]
    if args.api_key:
        command += ["--api-key", args.api_key]
    env_path = {"PYTHONPATH": str(REPO)}
    timeout = _seconds(args.run_time) + 300
    return subprocess.run(command, cwd=REPO, env={**os.environ, **env_path}, timeout=timeout, check=False).returncode


def summary_lines(stats_csv: Path, tally: dict[str, Any], server: dict[str, Any] | None) -> list[str]:
    """The run in a few lines: each request row of Locust's stats, then the cache outcomes."""
    lines = [f"{'request':<28} {'count':>6} {'fail':>5} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7}"]
    with stats_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            lines.append(f"{row['Name'][:28]:<28} {row['Request Count']:>6} {row['Failure Count']:>5} "
                         f"{row['50%']:>8} {row['95%']:>8} {float(row['Requests/s']):>7.2f}")
    for scenario, counts in tally.get("scenarios", {}).items():
        cache = {k.removeprefix("cache_"): v for k, v in counts.items() if k.startswith("cache_")}
        lines.append(f"x-ragd-cache, {scenario}: {cache}")
    if server:
        lines.append(f"server counters over the run: {json.dumps(server)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.load", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="a URL (any deployment) or a loopback host name")
    parser.add_argument("--port", type=int, default=8000, help="port when --host is a bare host name")
    parser.add_argument("--users", type=int, default=20, help="concurrent Locust users")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second")
    parser.add_argument("--run-time", default="60s", help="how long the run lasts (Locust's -t: 30s, 5m, ...)")
    parser.add_argument("--tags", nargs="*", default=None, help="only these scenarios (exact, paraphrase, fresh, "
                        "stream, followup, ingest)")
    parser.add_argument("--api-key", default="", help="bearer key of a keyed gateway (or $RAGD_LOAD_API_KEY)")
    parser.add_argument("--ingest-collection", default="load-ingest", help="where the ingest scenario writes")
    parser.add_argument("--out", type=Path, default=REPO / "load-results", help="CSV, tallies and plot")
    parser.add_argument("--fail-on-failures", action="store_true",
                        help="exit 1 when any request failed (Locust's exit status); by default a run that "
                             "finished and wrote its CSV exits 0, its failures counted in the CSV and tallies")
    parser.add_argument("--locust-python", default=str(REPO / ".clients" / "locust" / "bin" / "python"),
                        help="the python of Locust's virtualenv")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    url = target_url(args.host, args.port)
    with ragd_running(url, out) as started:
        before = scrape_counters(url)
        print(f"ragd load: {args.users} users for {args.run_time} against {url}"
              f"{' (started for this run)' if started else ''}", flush=True)
        code = run_locust(args, url, out)
        after = scrape_counters(url)
    server = counter_deltas(before, after) if before is not None and after is not None else None
    (out / "server.json").write_text(json.dumps({"url": url, "counters": server}, indent=2) + "\n")
    if not (out / "locust_stats.csv").exists():
        print(f"ragd load: Locust exited {code} without writing its CSV", file=sys.stderr)
        return code or 1
    tally = json.loads((out / "tally.json").read_text()) if (out / "tally.json").exists() else {}
    plot_run(out / "locust_stats_history.csv", out / "locust_stats.csv", out / "load.png",
             title=f"ragd load: {args.users} users, {args.run_time}, {url}")
    print("\n".join(summary_lines(out / "locust_stats.csv", tally, server)))
    print(f"ragd load: results in {out} (locust_stats*.csv, tally.json, server.json, load.png)")
    if code != 0 and not args.fail_on_failures:
        print(f"ragd load: Locust exited {code} (some requests failed: see locust_failures.csv)")
        return 0
    return code


if __name__ == "__main__":
    raise SystemExit(main())
