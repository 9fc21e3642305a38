"""Locust against ragd: 10 users for 60 s of fresh questions (:mod:`lab.load.locustfile`, ``--tags fresh``).

Runs inside the ``locust`` client virtualenv (pinned in ``lab/clients/requirements/locust.txt``).
Asserts what overload must look like: no 504 (nor any status but 200 and 429), every answer within
the request deadline, every 429 within 100 ms client-side and with ``Retry-After``. The tallies,
latency percentiles and the machine's load average during the run are kept in the report's facts
and in ``locust-tally.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from lab.clients.report import Report
from lab.clients.server import RagdServer

LOCUSTFILE = Path(__file__).resolve().parents[1] / "load" / "locustfile.py"
USERS, RUN_TIME = 10, "60s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(os.environ.get("RAGD_CLIENTS_RESULTS", "clients-results")))
    args = parser.parse_args(argv)
    ragd = RagdServer.from_env()
    results: Path = args.results
    results.mkdir(parents=True, exist_ok=True)
    tally_path = results / "locust-tally.json"
    report = Report("locust")
    try:
        subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--tags", "fresh",
                        "-u", str(USERS), "-r", str(USERS), "-t", RUN_TIME, "--host", ragd.base_url,
                        "--json-out", str(tally_path), "--only-summary"], check=False, timeout=600)
        found = json.loads(tally_path.read_text())
        report.facts.update(found)
        tally: dict[str, int] = found["tally"]
        others = {k: v for k, v in tally.items() if k.startswith("status_")}
        report.check("no 504 and no status but 200 or 429", not others, others)
        report.check("requests were made", sum(tally.values()) > 0, tally)
        report.check("every answer within the deadline", tally.get("answered_late", 0) == 0, tally)
        report.check("every 429 within 100 ms, with Retry-After", tally.get("refused_slow", 0) == 0,
                     found.get("seconds", {}).get("refused_s"))
    except Exception as exc:  # a crash is a failed check, reported with what had been seen
        report.fail("the check ran to its end", f"{type(exc).__name__}: {exc}")
    print(f"[locust] report: {report.save(results)}", flush=True)
    return report.exit_code()


if __name__ == "__main__":
    raise SystemExit(main())
