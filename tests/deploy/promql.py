"""Metric names used by the dashboards and alert rules, and metric names a service declares or exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALWAYS_AVAILABLE = {"up"}  # made by Prometheus itself for every target

_GRAFANA_DURATIONS = re.compile(r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}")
_GRAFANA_VARS = re.compile(r"\$\{?\w+\}?")
_LABEL_VALUES = re.compile(r"^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,")
_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum", "_created"),
             "summary": ("", "_count", "_sum", "_created"), "info": ("_info",), "unknown": ("",)}


def walk_panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def dashboard_queries(path: Path) -> list[str]:
    """Every PromQL expression of a dashboard: panel targets and templating queries."""
    board = json.loads(path.read_text())
    exprs = [t["expr"] for p in walk_panels(board.get("panels", [])) for t in p.get("targets", []) if t.get("expr")]
    for var in board.get("templating", {}).get("list", []):
        query = var.get("query")
        exprs.append(query.get("query", "") if isinstance(query, dict) else str(query or ""))
    return [e for e in exprs if e]


def alert_expressions(path: Path = ALERTS) -> list[str]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [str(rule["expr"]) for group in groups for rule in group["rules"]]


def all_expressions() -> dict[str, list[str]]:
    """Expressions by source file (dashboards and alert rules)."""
    found = {p.name: dashboard_queries(p) for p in sorted(DASHBOARDS.glob("*.json"))}
    found[ALERTS.name] = alert_expressions()
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (Grafana variables allowed) selects."""
    match = _LABEL_VALUES.match(expr.strip())
    if match:
        return {match.group(1)}
    expr = _GRAFANA_VARS.sub(".*", _GRAFANA_DURATIONS.sub("5m", expr))
    names: set[str] = set()

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(m.value for m in node.matchers.matchers if m.name == "__name__")
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def used_names() -> set[str]:
    return {name for exprs in all_expressions().values() for expr in exprs for name in metric_names(expr)}


def _sample_names(family: str, kind: str) -> set[str]:
    base = family.removesuffix("_total") if kind == "counter" else family
    return {base + suffix for suffix in _SUFFIXES.get(kind, ("",))}


def declared_names(module: object) -> set[str]:
    """Sample names of every prometheus_client metric defined as a module attribute."""
    names: set[str] = set()
    for value in vars(module).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names |= _sample_names(family.name, family.type)
    return names


def exported_names(exposition: str) -> set[str]:
    """Sample names a /metrics page declares (HELP/TYPE families, labelled ones without samples included)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names |= _sample_names(family.name, family.type)
        names.update(sample.name for sample in family.samples)
    return names


def label_matchers(expr: str) -> list[tuple[str, str, str]]:
    """``(label, op, value)`` of every label matcher in an expression; op is '=', '!=', '=~' or '!~'."""
    if _LABEL_VALUES.match(expr.strip()):
        return []
    expr = _GRAFANA_VARS.sub(".*", _GRAFANA_DURATIONS.sub("5m", expr))
    found: list[tuple[str, str, str]] = []
    ops = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            for m in node.matchers.matchers:
                found.append((m.name, ops.get(str(m.op).rsplit(".", 1)[-1], str(m.op)), m.value))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found
