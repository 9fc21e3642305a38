"""Render the kustomize overlays: ``kubectl kustomize`` when kubectl is installed, else a small
renderer that applies what deploy/k8s uses (resources, namespace, labels, image tags)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass"}


def render(overlay: str) -> list[dict[str, Any]]:
    folder = K8S / "overlays" / overlay
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run([kubectl, "kustomize", str(folder)], check=True, capture_output=True, text=True,
                             timeout=60).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]
    return render_without_kubectl(folder)


def render_without_kubectl(folder: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = folder / resource
        if path.is_dir():
            docs.extend(render_without_kubectl(path))
        else:
            docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    for doc in docs:
        if "namespace" in kustomization and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = kustomization["namespace"]
        for label in kustomization.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    tags = {i["name"]: i["newTag"] for i in kustomization.get("images", [])}
    for doc in docs:
        for container in pod_spec(doc).get("containers", []) if pod_spec(doc) else []:
            if container["image"] in tags:
                container["image"] = f"{container['image']}:{tags[container['image']]}"
    return docs


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}
