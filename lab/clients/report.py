"""What one client check found: named assertions, each passed or failed with what was seen.

Standard library only (imported inside the clients' virtualenvs). A check module builds a
:class:`Report`, records each assertion with :meth:`Report.check`, writes it as JSON with
:meth:`Report.save`, and exits 0 only when every assertion held.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Assertion", "Report", "client_arguments", "run_checks"]


@dataclass
class Assertion:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Report:
    client: str
    started: float = field(default_factory=time.time)
    assertions: list[Assertion] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, passed: bool, detail: object = "") -> bool:
        """Record one assertion (and print it, so a long check shows its progress)."""
        self.assertions.append(Assertion(name, bool(passed), str(detail)[:2000]))
        print(f"[{self.client}] {'ok  ' if passed else 'FAIL'} {name}" + (f": {str(detail)[:300]}" if detail else ""),
              flush=True)
        return bool(passed)

    def fail(self, name: str, detail: object) -> None:
        self.check(name, False, detail)

    @property
    def passed(self) -> bool:
        return bool(self.assertions) and all(a.passed for a in self.assertions)

    def save(self, results: Path) -> Path:
        results.mkdir(parents=True, exist_ok=True)
        path = results / f"{self.client}.json"
        payload = {"client": self.client, "passed": self.passed, "seconds": round(time.time() - self.started, 1),
                   "assertions": [asdict(a) for a in self.assertions], "facts": self.facts}
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=2))
        return path

    def exit_code(self) -> int:
        return 0 if self.passed else 1


def client_arguments(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments every API client check takes: ragd's OpenAI base URL (default: the runner's server,
    else a local ``make run``), the API key, and where the report goes (none: printed only)."""
    runner = os.environ.get("RAGD_CLIENTS_BASE_URL")
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--base-url", default=runner + "/v1" if runner else os.environ.get(
        "RAGD_BASE_URL", "http://127.0.0.1:8000/v1"))
    parser.add_argument("--api-key", default=os.environ.get("RAGD_API_KEY", "none"))
    parser.add_argument("--results", type=Path, default=None, help="folder for the JSON report")
    return parser.parse_args(argv)


def run_checks(client: str, checks: Mapping[str, Callable[[], None]], results: Path | None) -> int:
    """Run each named check (it raises on what it finds wrong), record it, save the report; exit status."""
    report = Report(client)
    for name, check in checks.items():
        try:
            check()
            report.check(name, True)
        except Exception as exc:  # report every check, then fail
            report.fail(name, f"{type(exc).__name__}: {exc}")
    if results is not None:
        report.save(results)
    return report.exit_code()
