"""The images install ragd from a wheel (``pip install ".[extra]"``), not from the working tree: every data
file the packages ship (policies, Colang, classifier weights, demo corpus) must be inside that wheel."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.layout import ROOT

PACKAGES = ("services", "embeddings", "gateway", "cache", "retriever", "guardrails", "generator")


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--", "pyproject.toml", "README.md", *PACKAGES], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return [line for line in out.splitlines() if line]


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="setuptools is not installed")
def test_the_wheel_carries_every_data_file_the_packages_ship(tmp_path: Path) -> None:
    files = _tracked_files()
    source = tmp_path / "src"
    for name in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("ragd-*.whl"))
    shipped = set(zipfile.ZipFile(wheel).namelist())
    data = [f for f in files if f.split("/")[0] in PACKAGES and not f.endswith(".py")]
    assert data, "no data files found"
    missing = sorted(f for f in data if f not in shipped)
    assert not missing, f"not in the wheel (add their patterns to [tool.setuptools.package-data]): {missing}"
