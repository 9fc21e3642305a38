"""Kubernetes manifests: both overlays render, pass the Kubernetes JSON schemas (kubernetes-validate,
strict), and hold together: probes, resources, HPAs, PDBs, selectors, GPU, scrape annotations, settings."""

from __future__ import annotations

import shutil
from typing import Any
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

from tests.deploy.k8s import K8S, OVERLAYS, ROOT, by_kind, pod_spec, render, render_without_kubectl
from tests.deploy.layout import RAGD_SERVICES, compose, parse_serve, unknown_settings

K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
WORKLOADS = ("Deployment", "StatefulSet")
PROMETHEUS = ROOT / "deploy" / "prometheus"


@pytest.fixture(scope="module", params=OVERLAYS)
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    rendered: list[dict[str, Any]] = render(request.param)
    return rendered


def _workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in WORKLOADS]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_resource_passes_the_kubernetes_schema(docs: list[dict[str, Any]], version: str) -> None:
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_rejects_a_misspelt_field(docs: list[dict[str, Any]]) -> None:
    pdb = dict(next(d for d in docs if d["kind"] == "PodDisruptionBudget"))
    pdb["spec"] = {**pdb["spec"], "minAvailabel": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pdb, K8S_VERSIONS[-1], strict=True)


def test_every_container_has_probes_and_resources(docs: list[dict[str, Any]]) -> None:
    for workload in _workloads(docs):
        for container in pod_spec(workload)["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            assert "readinessProbe" in container and "livenessProbe" in container, where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert "memory" in container["resources"]["limits"], where
            ports = {p["name"] for p in container["ports"]}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                port = container.get(probe, {}).get("httpGet", {}).get("port")
                assert port is None or port in ports, f"{where}: {probe} uses unknown port {port}"


def test_ragd_pieces_probe_ready_and_health_and_run_unprivileged(docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(docs, "Deployment")
    for name in ("gateway", "retriever", "guardrails"):
        pod = pod_spec(deployments[name])
        container = pod["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["image"].startswith(f"ragd/{name}:")
        args = parse_serve(container["args"])
        assert args.piece == name and args.port == container["ports"][0]["containerPort"]


def test_gateway_and_retriever_autoscale(docs: list[dict[str, Any]]) -> None:
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    deployments = by_kind(docs, "Deployment")
    assert {"gateway", "retriever"} <= set(hpas)
    for hpa in hpas.values():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_every_deployment_has_a_disruption_budget_that_selects_it(docs: list[dict[str, Any]]) -> None:
    pdbs = list(by_kind(docs, "PodDisruptionBudget").values())
    for name, deployment in by_kind(docs, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert matching, f"no PodDisruptionBudget selects {name}"


def test_every_service_selects_pods_and_named_ports(docs: list[dict[str, Any]]) -> None:
    for name, service in by_kind(docs, "Service").items():
        selector = service["spec"]["selector"]
        pods = [w for w in _workloads(docs) if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert pods, f"service {name} selects no pod"
        ports = {p["name"] for c in pod_spec(pods[0])["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"service {name}: no container port {port['targetPort']}"


def test_stores_are_stateful_sets_with_volumes(docs: list[dict[str, Any]]) -> None:
    stateful = by_kind(docs, "StatefulSet")
    for name in ("redis", "chroma"):
        assert stateful[name]["spec"]["volumeClaimTemplates"], name


def test_the_generator_overlay_decides_the_gpu(docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(docs, "Deployment")
    services = by_kind(docs, "Service")
    assert services["llm"]["spec"]["ports"][0]["port"] == 8003
    gpus = {name: pod_spec(d)["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")
            for name, d in deployments.items()}
    if "vllm" in deployments:
        vllm = pod_spec(deployments["vllm"])["containers"][0]
        assert vllm["resources"]["requests"]["nvidia.com/gpu"] == 1 == gpus["vllm"]
        assert vllm["image"].startswith("vllm/vllm-openai:v")
        assert "--served-model-name=ragd-llm" in vllm["args"]
        assert {n for n, g in gpus.items() if g} == {"vllm"}
    else:
        assert "generator" in deployments and not any(gpus.values())
        assert parse_serve(pod_spec(deployments["generator"])["containers"][0]["args"]).piece == "generator"


def test_http_pieces_carry_scrape_annotations(docs: list[dict[str, Any]]) -> None:
    for name, deployment in by_kind(docs, "Deployment").items():
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", name
        ports = {str(p["containerPort"]) for c in pod_spec(deployment)["containers"] for p in c["ports"]}
        assert annotations["prometheus.io/port"] in ports, name


def _env_names(deployment: dict[str, Any], config_maps: dict[str, dict[str, Any]]) -> set[str]:
    container = pod_spec(deployment)["containers"][0]
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= set(config_maps[source["configMapRef"]["name"]]["data"])
    return names


def test_every_environment_variable_is_a_real_setting_and_matches_compose(docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(docs, "Deployment")
    config_maps = by_kind(docs, "ConfigMap")
    services = compose()["services"]
    for name in RAGD_SERVICES:
        if name not in deployments:  # the generator is vLLM in the gpu overlay
            continue
        names = _env_names(deployments[name], config_maps)
        assert not unknown_settings(name, names), f"{name}: not settings: {sorted(unknown_settings(name, names))}"
        # set from the pod's CPU request (no limit, so no cgroup quota to size from); compose leaves them to it
        sized = _from_pod_resources(deployments[name])
        assert names - sized == set(services[name]["environment"]), f"{name}: k8s and compose set different settings"


def _from_pod_resources(deployment: dict[str, Any]) -> set[str]:
    env = pod_spec(deployment)["containers"][0].get("env", [])
    return {e["name"] for e in env if "resourceFieldRef" in e.get("valueFrom", {})}


def test_llama_cpp_threads_follow_the_cpu_request(docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(docs, "Deployment")
    if "generator" not in deployments:  # gpu overlay
        return
    container = pod_spec(deployments["generator"])["containers"][0]
    threads = next(e for e in container["env"] if e["name"] == "RAGD_GENERATOR_THREADS")
    assert threads["valueFrom"]["resourceFieldRef"]["resource"] == "requests.cpu"
    assert "cpu" in container["resources"]["requests"]
    assert "RAGD_GENERATOR_THREADS" not in compose()["services"]["generator"]["environment"]


def test_internal_urls_name_existing_services_and_ports(docs: list[dict[str, Any]]) -> None:
    services = by_kind(docs, "Service")
    for config_map in by_kind(docs, "ConfigMap").values():
        for key, value in config_map["data"].items():
            if key.endswith("_URL"):
                url = urlparse(value)
                assert url.hostname in services, f"{key}: no service {url.hostname}"
                assert url.port in {p["port"] for p in services[url.hostname]["spec"]["ports"]}, key


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) is not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_fallback_renderer_agrees_with_kustomize(overlay: str) -> None:
    def key(doc: dict[str, Any]) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    kustomized = {key(d): d for d in render(overlay)}
    fallback = {key(d): d for d in render_without_kubectl(K8S / "overlays" / overlay)}
    assert kustomized == fallback


def test_in_cluster_prometheus_names_jobs_as_the_alerts_expect(docs: list[dict[str, Any]]) -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus-k8s.yml").read_text())
    relabels = config["scrape_configs"][0]["relabel_configs"]
    job = next(r for r in relabels if r.get("target_label") == "job")
    assert job["source_labels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
    alerts = (PROMETHEUS / "alerts.yml").read_text()
    for name, deployment in by_kind(docs, "Deployment").items():
        component = deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        assert component in RAGD_SERVICES, name
        assert component in alerts.split('up{job=~"')[1].split('"')[0].split("|")


def test_the_gateway_is_scraped_on_its_internal_port_which_the_service_does_not_expose(
        docs: list[dict[str, Any]]) -> None:
    gateway = by_kind(docs, "Deployment")["gateway"]
    port = gateway["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
    assert by_kind(docs, "ConfigMap")["ragd-gateway"]["data"]["RAGD_GATEWAY_METRICS_PORT"] == port
    service_ports = {str(p["port"]) for p in by_kind(docs, "Service")["gateway"]["spec"]["ports"]}
    assert port not in service_ports and service_ports == {"8000"}
    probes = pod_spec(gateway)["containers"][0]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/ready"  # shallow: dependencies never unready it
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health"
