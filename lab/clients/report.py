"""What one client check found: named assertions, each passed or failed with what was seen.

Standard library only (imported inside the clients' virtualenvs). A check module builds a
:class:`Report`, records each assertion with :meth:`Report.check`, writes it as JSON with
:meth:`Report.save`, and exits 0 only when every assertion held.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Assertion", "Report"]


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
