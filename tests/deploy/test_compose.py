"""docker-compose.yml against the compose-spec schema, and against the code: Dockerfiles, health checks,
settings, ports, volumes, secrets. No Docker engine needed."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from typing import Any

import jsonschema
import pytest

from tests.deploy.layout import BUILT_SERVICES, RAGD_SERVICES, ROOT, cli_port, compose, unknown_settings

PUBLISHED = {"gateway", "grafana", "prometheus"}
SECRET_NAME = re.compile(r"(KEY|PASSWORD|TOKEN|SECRET)", re.I)
INTERPOLATION = re.compile(r"^\$\{[A-Z0-9_]+(:?-[^}]*)?\}$")


def _schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return schema


def _validate(document: dict[str, Any]) -> None:
    jsonschema.validate(document, _schema(), cls=jsonschema.Draft202012Validator)


def test_compose_file_matches_the_compose_spec() -> None:
    _validate(compose())


def test_the_schema_check_rejects_a_broken_compose_file() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["gateway"]["depends_on"]["redis"]["condition"] = "service_ready"
    with pytest.raises(jsonschema.ValidationError):
        _validate(broken)


def test_every_built_service_uses_its_own_dockerfile() -> None:
    services = compose()["services"]
    for name in BUILT_SERVICES:
        build = services[name]["build"]
        assert build["context"] == "."
        assert build["dockerfile"] == f"deploy/{name}/Dockerfile"
        assert (ROOT / build["dockerfile"]).is_file()
        assert (ROOT / f"deploy/{name}/Dockerfile.dockerignore").is_file()


def test_every_service_has_a_health_check_on_its_own_port() -> None:
    for name, service in compose()["services"].items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        command = service.get("command")
        if isinstance(command, list) and "--port" in command:
            assert f":{cli_port(command)}/" in " ".join(test), f"{name}: health check probes another port"


def test_ragd_services_probe_readiness_and_the_generator_its_health() -> None:
    services = compose()["services"]
    for name in ("gateway", "retriever", "guardrails"):
        assert "/ready" in " ".join(services[name]["healthcheck"]["test"])
    for name in ("generator", "vllm"):
        assert "/health" in " ".join(services[name]["healthcheck"]["test"])


def test_dependencies_wait_for_health() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec["condition"] == "service_healthy", f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency]


def test_the_gateway_finds_a_generator_in_either_profile() -> None:
    services = compose()["services"]
    gateway_env = services["gateway"]["environment"]
    assert gateway_env["RAGD_GATEWAY_GENERATOR_URL"] == "http://llm:8003/v1"
    for name, profile in (("generator", "cpu"), ("vllm", "gpu")):
        service = services[name]
        assert service["profiles"] == [profile]
        assert "llm" in service["networks"]["default"]["aliases"]
        assert services["gateway"]["depends_on"][name]["required"] is False
    assert cli_port(services["generator"]["command"]) == 8003
    vllm = services["vllm"]
    assert vllm["command"][vllm["command"].index("--port") + 1] == "8003"
    assert vllm["command"][vllm["command"].index("--served-model-name") + 1] == gateway_env[
        "RAGD_GATEWAY_GENERATOR_MODEL"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_internal_urls_point_at_each_service_port() -> None:
    services = compose()["services"]
    env = services["gateway"]["environment"]
    assert env["RAGD_GATEWAY_RETRIEVER_URL"] == f"http://retriever:{cli_port(services['retriever']['command'])}"
    assert env["RAGD_GATEWAY_GUARDRAILS_URL"] == f"http://guardrails:{cli_port(services['guardrails']['command'])}"
    chroma_port = cli_port(services["chroma"]["command"])
    assert services["retriever"]["environment"]["RAGD_RETRIEVER_CHROMA_URL"] == f"http://chroma:{chroma_port}"


def test_only_user_facing_ports_are_published() -> None:
    services = compose()["services"]
    assert {name for name, s in services.items() if s.get("ports")} <= PUBLISHED
    assert "ports" in services["gateway"] and "ports" in services["grafana"]
    assert all(p.startswith("127.0.0.1:") for p in services["prometheus"]["ports"])


def test_state_lives_in_named_volumes_and_config_is_mounted_read_only() -> None:
    data = compose()
    declared = set(data["volumes"])
    used: set[str] = set()
    for name, service in data["services"].items():
        for mount in service.get("volumes", []):
            source, _target, *mode = mount.split(":")
            if source.startswith("./"):
                assert mode == ["ro"], f"{name}: bind mount {source} must be read-only"
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused volumes: {declared - used}"
    for name in ("redis", "chroma", "retriever"):
        assert any(not m.startswith("./") for m in data["services"][name]["volumes"]), f"{name} keeps no data"


def test_no_secret_value_is_written_in_the_file() -> None:
    data = compose()
    for name, service in data["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and not key.endswith("__FILE"):
                assert INTERPOLATION.match(str(value)), f"{name}: {key} must come from the environment (.env)"
    grafana = data["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert "environment" in data["secrets"]["grafana_admin_password"]


def test_every_environment_variable_of_a_ragd_service_is_a_real_setting() -> None:
    services = compose()["services"]
    for name in RAGD_SERVICES:
        env = set(services[name].get("environment", {}))
        assert env, f"{name} sets no environment"
        assert all(n.startswith("RAGD_") for n in env), f"{name}: only ragd settings belong here"
        assert not unknown_settings(name, env), f"{name}: not settings: {sorted(unknown_settings(name, env))}"


def test_the_settings_check_catches_a_misspelt_variable() -> None:
    assert unknown_settings("retriever", {"RAGD_RETRIEVER_CHROMA_URL", "RAGD_RETRIEVER_CHROMA_URI"}) == {
        "RAGD_RETRIEVER_CHROMA_URI"}
    assert unknown_settings("guardrails", {"RAGD_GATEWAY_RETRIEVER_URL"}) == {"RAGD_GATEWAY_RETRIEVER_URL"}


def test_env_example_names_only_real_settings() -> None:
    names = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
             if line and not line.startswith("#") and "=" in line}
    ragd = {n for n in names if n.startswith("RAGD_")}
    assert ragd, ".env.example sets no ragd setting"
    unknown = {n for n in ragd if all(unknown_settings(s, {n}) for s in RAGD_SERVICES)}
    unknown.discard("RAGD_LOG_LEVEL")  # substituted into each service's own RAGD_<PIECE>_LOG_LEVEL
    assert not unknown, f".env.example: not settings of any service: {sorted(unknown)}"
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))
    assert interpolated <= names | {"COMPOSE_PROFILES"}, f"undocumented: {sorted(interpolated - names)}"


def test_images_are_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service.get("image", "")
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d", tag), f"{name}: tag {tag!r} carries no version"


def _env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#") and "=" in line)


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR-default}, as `docker compose config` resolves them."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def resolve(match: re.Match[str]) -> str:
        name, op, default = match.group(1), match.group(2), match.group(3) or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        if name not in env:
            raise AssertionError(f"${{{name}}} has no value and no default")
        return env[name]

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:?-)([^}]*))?\}", resolve, value)


@pytest.mark.parametrize("env", ["defaults", "env-example"])
def test_the_interpolated_file_still_matches_the_spec(env: str) -> None:
    values = _env_example() if env == "env-example" else {}
    resolved = _interpolate(compose(), values)
    _validate(resolved)
    for name, service in resolved["services"].items():
        for port in service.get("ports", []):
            *_, host, container = port.split(":")
            assert host.isdigit() and container.isdigit(), f"{name}: port {port!r}"
        assert "${" not in json.dumps(service), name
