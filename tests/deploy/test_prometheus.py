"""Prometheus: the scrape config covers every ragd service on the port compose runs it on, and the
alert rules are valid and behave as intended (promtool's own checks and unit tests where installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.layout import RAGD_SERVICES, cli_port, compose
from tests.deploy.promql import ALERTS, metric_names

PROMETHEUS = ALERTS.parent
REQUIRED_ALERTS = {"RagdServiceDown", "RagdDependencyDegraded", "RagdHighErrorRate", "RagdHighLatencyP95"}
promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(promtool is None, reason="promtool not installed (Debian package 'prometheus')")


def _config() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    return data


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> None:
    assert promtool is not None
    result = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ragd_service_is_scraped_where_it_listens() -> None:
    jobs = {job["job_name"]: job for job in _config()["scrape_configs"]}  # type: ignore[attr-defined]
    services = compose()["services"]
    for name in RAGD_SERVICES:
        targets = jobs[name]["static_configs"][0]["targets"]
        host = "llm" if name == "generator" else name
        # a piece with an internal metrics port is scraped there, never on its API port
        port = services[name]["environment"].get(f"RAGD_{name.upper()}_METRICS_PORT") or cli_port(
            services[name]["command"])
        assert targets == [f"{host}:{port}"], name
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"


def test_the_rule_file_compose_mounts_is_the_one_prometheus_loads() -> None:
    mounts = compose()["services"]["prometheus"]["volumes"]
    assert f"./deploy/prometheus/alerts.yml:{_config()['rule_files'][0]}:ro" in mounts  # type: ignore[index]


def test_alert_rules_are_complete_and_annotated() -> None:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert metric_names(str(rule["expr"])), rule["alert"]


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    _promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_promtool_accepts_the_config(tmp_path: Path) -> None:
    config = _config()
    config["rule_files"] = [str(ALERTS)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    _promtool("check", "config", "prometheus.yml", cwd=tmp_path)


@needs_promtool
def test_alerts_fire_on_synthetic_series() -> None:
    _promtool("test", "rules", "alerts.test.yml")
