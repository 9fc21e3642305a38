"""``make test-clients``: the clients people use, each from its own virtualenv, against one ragd.

Starts ``ragd serve --demo`` (what ``make run`` serves) on a free port, then runs each client check
as ``<venv>/bin/python -m <module>`` with the server's address in its environment
(:meth:`lab.clients.server.RagdServer.as_env`). A check writes ``<results>/<client>.json`` and
exits 0 when all its assertions held. The last lines printed are one ``PASS``/``FAIL`` line per
client and a total.

Adding a client: its pinned requirements in ``lab/clients/requirements/<client>.txt`` (the Makefile
builds ``.clients/<client>`` from it) and its module in :data:`CHECKS`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lab.clients.server import RagdServer, ragd_server

__all__ = ["CHECKS", "SERVER_ENV", "main"]

# client name (also its virtualenv's folder under --venvs) -> the module that checks it
CHECKS: dict[str, str] = {
    "openai": "lab.clients.openai_check",
    "langchain": "lab.clients.langchain_check",
    "llamaindex": "lab.clients.llamaindex_check",
    "openwebui": "lab.clients.openwebui_check",
    "locust": "lab.clients.locust_check",  # last: its overload leaves the generator's estimate high
}

# the server is `make run`'s, with answers kept short and a longer deadline, so a shared, slow CPU (the
# small CPU generator makes a few tokens a second when the machine is busy) still finishes each one, and a
# smaller hold-back window of the streaming output rails (default 64 characters), so an answer that short
# still reaches a client in several pieces: the checks test the protocol and the clients, not the answers
SERVER_ENV: dict[str, str] = {"RAGD_GATEWAY_DEFAULT_MAX_TOKENS": "48", "RAGD_REQUEST_TIMEOUT_S": "300",
                              "RAGD_GATEWAY_STREAM_HOLDBACK_CHARS": "16"}

REPO = Path(__file__).resolve().parents[2]
CHECK_TIMEOUT_S = 3600


def run_check(client: str, module: str, venvs: Path, server: RagdServer, results: Path) -> tuple[bool, str]:
    """One check in its client's virtualenv; (passed, a one-line summary)."""
    python = venvs / client / "bin" / "python"
    if not python.exists():
        return False, f"no virtualenv at {python.parent.parent} (make test-clients builds it)"
    env = {**os.environ, **server.as_env(), "RAGD_CLIENTS_RESULTS": str(results), "PYTHONPATH": str(REPO),
           "PYTHONUNBUFFERED": "1", "RAGD_CLIENTS_DEADLINE_S": SERVER_ENV["RAGD_REQUEST_TIMEOUT_S"]}
    started = time.monotonic()
    try:
        code = subprocess.run([str(python), "-m", module, "--results", str(results)], cwd=REPO, env=env,
                              timeout=CHECK_TIMEOUT_S).returncode
    except subprocess.TimeoutExpired:
        return False, f"did not finish within {CHECK_TIMEOUT_S} s"
    seconds = time.monotonic() - started
    report = results / f"{client}.json"
    if not report.exists():
        return False, f"exited {code} without a report ({seconds:.0f} s)"
    assertions = json.loads(report.read_text())["assertions"]
    failed = [a["name"] for a in assertions if not a["passed"]]
    summary = f"{len(assertions) - len(failed)}/{len(assertions)} assertions held in {seconds:.0f} s"
    if failed:
        summary += "; failed: " + "; ".join(failed)
    return code == 0 and not failed, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the client checks against one ragd server.")
    parser.add_argument("--venvs", type=Path, default=REPO / ".clients", help="the clients' virtualenvs")
    parser.add_argument("--results", type=Path, default=REPO / "clients-results", help="reports and screenshots")
    parser.add_argument("--only", nargs="*", choices=sorted(CHECKS), help="run only these clients")
    args = parser.parse_args(argv)
    results: Path = args.results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    chosen = {name: module for name, module in CHECKS.items() if not args.only or name in args.only}
    outcomes: dict[str, tuple[bool, str]] = {}
    print(f"ragd clients: starting ragd serve --demo (log in {results / 'server' / 'ragd.log'})", flush=True)
    with ragd_server(sys.executable, REPO, results / "server", extra_env=SERVER_ENV) as server:
        for name, module in chosen.items():
            print(f"ragd clients: {name} ...", flush=True)
            outcomes[name] = run_check(name, module, args.venvs.resolve(), server, results)
    print("\nragd client checks (results in " + str(results) + "):")
    for name, (passed, summary) in outcomes.items():
        print(f"  {'PASS' if passed else 'FAIL'}  {name:<12} {summary}")
    held = sum(1 for ok, _ in outcomes.values() if ok)
    print(f"clients: {held} passed, {len(outcomes) - held} failed")
    return 0 if held == len(outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
