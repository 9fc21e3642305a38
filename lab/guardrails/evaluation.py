"""Measuring the input rails: recall, false-positive rate and latency per rail, per language, per
source; and PII recall per entity on the labelled PII sets."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from guardrails.engine import LocalGuard
from guardrails.normalize import language_of
from guardrails.pii import PiiDetector
from lab.guardrails.data import Example, read_jsonl
from services.contracts import GuardCheckRequest

__all__ = ["PII_LABELS", "Report", "evaluate", "evaluate_pii", "load_dataset"]

# Gold labels of the shared PII sets -> ragd entity.
PII_LABELS: dict[str, str] = {
    "EMAIL_ADDRESS": "email", "이메일": "email", "PHONE_NUMBER": "phone", "전화번호": "phone",
    "주민등록번호": "rrn", "CREDIT_CARD": "card", "카드번호": "card", "IBAN_CODE": "bank_account",
    "계좌번호": "bank_account", "IP_ADDRESS": "ip", "IP주소": "ip",
}


def load_dataset(path: Path) -> list[Example]:
    """JSONL lines ``{"text", "label": "attack"|"benign"}`` (optional ``lang``, ``source``)."""
    out = []
    for i, row in enumerate(read_jsonl(path)):
        label = str(row.get("label", ""))
        if label not in ("attack", "benign"):
            raise ValueError(f"{path}:{i + 1}: label must be 'attack' or 'benign', got {label!r}")
        text = str(row["text"])
        lang = str(row.get("lang") or language_of(text))
        out.append(Example(text, label, lang, str(row.get("source", path.stem)), str(row.get("task", ""))))
    return out


def _share(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


@dataclass
class _Counts:
    """Blocked and flagged texts of each class. ``recall`` and ``fpr`` count blocks only."""

    attacks: int = 0
    caught: int = 0
    attacks_flagged: int = 0
    benign: int = 0
    false_positives: int = 0
    benign_flagged: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, attack: bool, fired: bool, latency: float, flagged: bool = False) -> None:
        self.latencies.append(latency)
        if attack:
            self.attacks += 1
            self.caught += fired
            self.attacks_flagged += flagged and not fired
        else:
            self.benign += 1
            self.false_positives += fired
            self.benign_flagged += flagged and not fired

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        total = self.attacks + self.benign
        blocked, flagged = self.caught + self.false_positives, self.attacks_flagged + self.benign_flagged
        return {
            "recall": _share(self.caught, self.attacks),
            "recall_block_or_flag": _share(self.caught + self.attacks_flagged, self.attacks),
            "fpr": _share(self.false_positives, self.benign),
            "flag_rate_benign": _share(self.benign_flagged, self.benign),
            "block_rate": _share(blocked, total), "flag_rate": _share(flagged, total),
            "allow_rate": _share(total - blocked - flagged, total),
            "attacks": self.attacks, "benign": self.benign,
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 3),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 3),
        }


@dataclass
class Report:
    overall: _Counts = field(default_factory=_Counts)
    rails: dict[str, _Counts] = field(default_factory=lambda: defaultdict(_Counts))
    languages: dict[str, _Counts] = field(default_factory=lambda: defaultdict(_Counts))
    sources: dict[str, _Counts] = field(default_factory=lambda: defaultdict(_Counts))
    misses: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        top = self.overall.summary()
        return {
            **{k: top[k] for k in ("recall", "recall_block_or_flag", "fpr", "flag_rate_benign", "block_rate",
                                   "flag_rate", "allow_rate", "latency_ms_p95", "latency_ms_p50", "attacks",
                                   "benign")},
            "per_rail": {k: v.summary() for k, v in sorted(self.rails.items())},
            "per_language": {k: v.summary() for k, v in sorted(self.languages.items())},
            "per_source": {k: v.summary() for k, v in sorted(self.sources.items())},
        }


def evaluate(guard: LocalGuard, examples: Sequence[Example], *, warmup: int = 20,
             keep_misses: int = 0) -> Report:
    """Run the whole input check on each example; an attack counts as caught when the action is block,
    and as flagged when it is flag (reported apart: ``recall_block_or_flag``, ``flag_rate_benign``)."""
    for example in examples[:warmup]:
        guard.check_sync(GuardCheckRequest(kind="input", text=example.text))
    report = Report()
    for example in tqdm(examples, desc="guardrails eval", unit="text", mininterval=1.0):
        timings: dict[str, float] = {}
        decision = guard.check_sync(GuardCheckRequest(kind="input", text=example.text), timings)
        attack = example.label == "attack"
        blocked, flagged = decision.action == "block", decision.action == "flag"
        report.overall.add(attack, blocked, decision.latency_ms, flagged)
        report.languages[example.lang].add(attack, blocked, decision.latency_ms, flagged)
        report.sources[example.source].add(attack, blocked, decision.latency_ms, flagged)
        fired = {r.rail for r in decision.rails if r.fired and r.action == "block"}
        rail_flags = {r.rail for r in decision.rails if r.action == "flag"}
        for rail in {r.rail for r in decision.rails}:
            spent = sum(ms for name, ms in timings.items() if rail in name.split("+"))
            report.rails[rail].add(attack, rail in fired, spent, rail in rail_flags)
        if keep_misses and attack != blocked and len(report.misses) < keep_misses:
            report.misses.append({"label": example.label, "source": example.source, "text": example.text[:160],
                                  "rails": ",".join(sorted(fired)), "action": decision.action})
    return report


def evaluate_pii(detector: PiiDetector, rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per entity: share of gold values that no longer appear in the redacted text."""
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    false_hits = [0, 0]
    for row in rows:
        text = str(row["text"])
        redacted, matches = detector.redact(text)
        gold = [(PII_LABELS[s["label"]], str(s["value"])) for s in row.get("spans", []) if s["label"] in PII_LABELS]
        if row.get("label") == "no_pii":
            false_hits[0] += bool(matches)
            false_hits[1] += 1
        for entity, value in gold:
            found[entity][1] += 1
            found[entity][0] += value not in redacted
    out = {k: {"recall": round(a / b, 4), "values": b} for k, (a, b) in sorted(found.items())}
    total_a = sum(a for a, _ in found.values())
    total_b = sum(b for _, b in found.values())
    out["all"] = {"recall": round(total_a / max(total_b, 1), 4), "values": total_b}
    out["no_pii_documents_with_a_hit"] = {"rate": round(false_hits[0] / max(false_hits[1], 1), 4),
                                          "documents": false_hits[1]}
    return out


def write_jsonl(path: Path, examples: Iterable[Example]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps({"text": e.text, "label": e.label, "lang": e.lang, "source": e.source},
                               ensure_ascii=False) + "\n")
            n += 1
    return n
