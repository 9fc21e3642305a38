"""Grafana provisioning and dashboards: well-formed, wired to the provisioned datasource, and every
metric a dashboard or alert uses is declared in services/telemetry.py (the metric contract)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from services import telemetry
from tests.deploy.promql import (
    ALWAYS_AVAILABLE,
    DASHBOARDS,
    ROOT,
    all_expressions,
    declared_names,
    label_matchers,
    metric_names,
    walk_panels,
)

GRAFANA = ROOT / "deploy" / "grafana"
REQUIRED_BOARDS = {"ragd-overview", "ragd-pipeline", "ragd-cache", "ragd-guardrails", "ragd-generator"}


def _datasource_uids() -> set[str]:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    return {ds["uid"] for ds in config["datasources"]}


def test_every_required_dashboard_exists_with_its_uid() -> None:
    boards = {json.loads(p.read_text())["uid"]: p for p in DASHBOARDS.glob("*.json")}
    assert set(boards) >= REQUIRED_BOARDS
    for uid, path in boards.items():
        assert path.stem == uid, f"{path.name}: file name and uid differ"


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.stem)
def test_dashboard_panels_use_the_provisioned_datasource(path: Path) -> None:
    board = json.loads(path.read_text())
    uids = _datasource_uids()
    panels = [p for p in walk_panels(board["panels"]) if p["type"] != "row"]
    assert panels, "a dashboard with no panels"
    ids = [p["id"] for p in walk_panels(board["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert panel["datasource"]["uid"] in uids
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids


def test_dashboard_provider_loads_the_folder_compose_mounts() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "ragd.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert f"./deploy/grafana/dashboards:{path}:ro" in compose["services"]["grafana"]["volumes"]
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/") and (DASHBOARDS / home.rsplit("/", 1)[1]).exists()


def test_every_expression_parses_and_selects_a_metric() -> None:
    for source, exprs in all_expressions().items():
        assert exprs, f"{source}: no expressions found"
        for expr in exprs:
            assert metric_names(expr), f"{source}: {expr!r} selects no metric"


def test_every_used_metric_is_declared_in_the_telemetry_contract() -> None:
    declared = declared_names(telemetry)
    assert {"ragd_requests_total", "ragd_stage_seconds_bucket", "ragd_in_flight_requests"} <= declared
    for source, exprs in all_expressions().items():
        for expr in exprs:
            unknown = metric_names(expr) - declared - ALWAYS_AVAILABLE
            assert not unknown, f"{source}: {sorted(unknown)} not declared in services/telemetry.py ({expr!r})"


def test_metric_name_extraction_sees_through_functions_and_grafana_variables() -> None:
    expr = ('histogram_quantile(0.95, sum by (le) (rate(ragd_request_seconds_bucket{service=~"$service"}'
            '[$__rate_interval]))) / on() group_left sum(ragd_in_flight_requests) or {__name__="up"}')
    assert metric_names(expr) == {"ragd_request_seconds_bucket", "ragd_in_flight_requests", "up"}
    assert metric_names("label_values(ragd_requests_total, service)") == {"ragd_requests_total"}



# Labels whose values the code writes as string literals (route, status, service and job come from
# route templates, HTTP statuses, service names and Prometheus itself).
LITERAL_LABELS = {"stage", "outcome", "result", "kind", "rail", "action", "dependency", "reason", "direction"}
PACKAGES = ("services", "gateway", "cache", "retriever", "guardrails", "generator")


def _code_literals() -> set[str]:
    literals: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    literals.add(node.value)
    return literals


def _emitted(value: str, literals: set[str]) -> bool:
    if value.endswith(".*"):
        return any(lit.startswith(value[:-2]) for lit in literals)
    return value in literals


def test_every_label_value_a_dashboard_or_alert_filters_on_is_written_by_the_code() -> None:
    literals = _code_literals()
    for source, exprs in all_expressions().items():
        for expr in exprs:
            for label, op, value in label_matchers(expr):
                if label not in LITERAL_LABELS or value == ".*":
                    continue
                alternatives = value.split("|") if op in ("=~", "!~") else [value]
                unknown = [a for a in alternatives if not _emitted(a, literals)]
                assert not unknown, f"{source}: {label} values {unknown} are never written by the code ({expr!r})"
