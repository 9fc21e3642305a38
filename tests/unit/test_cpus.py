"""services.cpus: CPUs from the cgroup quota (v2 and v1) and the affinity mask, on cgroup trees written here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.cpus import CgroupPaths, available_cpus, capped_threads, cgroup_cpu_limit


def _tree(tmp_path: Path, self_cgroup: str, files: dict[str, str]) -> CgroupPaths:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    (tmp_path / "self_cgroup").write_text(self_cgroup)
    return CgroupPaths(root=root, self_cgroup=tmp_path / "self_cgroup")


def test_v2_quota_in_the_namespace_root(tmp_path: Path) -> None:
    paths = _tree(tmp_path, "0::/\n", {"cpu.max": "150000 100000"})
    assert cgroup_cpu_limit(paths) == 1.5
    assert available_cpus(paths, affinity=16) == 2  # rounded up


def test_v2_no_quota(tmp_path: Path) -> None:
    paths = _tree(tmp_path, "0::/\n", {"cpu.max": "max 100000"})
    assert cgroup_cpu_limit(paths) is None
    assert available_cpus(paths, affinity=6) == 6


def test_v2_the_tightest_quota_along_the_hierarchy(tmp_path: Path) -> None:
    paths = _tree(tmp_path, "0::/kubepods/pod1/ctr\n", {
        "kubepods/cpu.max": "max 100000",
        "kubepods/pod1/cpu.max": "300000 100000",
        "kubepods/pod1/ctr/cpu.max": "max 100000",
    })
    assert cgroup_cpu_limit(paths) == 3.0
    assert available_cpus(paths, affinity=32) == 3


def test_v1_cfs_quota(tmp_path: Path) -> None:
    paths = _tree(tmp_path, "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n", {
        "cpu,cpuacct/cpu.cfs_quota_us": "50000",
        "cpu,cpuacct/cpu.cfs_period_us": "100000",
    })
    assert cgroup_cpu_limit(paths) == 0.5
    assert available_cpus(paths, affinity=8) == 1  # never below one


def test_v1_own_directory_before_the_mount_root(tmp_path: Path) -> None:
    paths = _tree(tmp_path, "5:cpu,cpuacct:/docker/abc\n", {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "400000",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        "cpu,cpuacct/cpu.cfs_quota_us": "-1",
        "cpu,cpuacct/cpu.cfs_period_us": "100000",
    })
    assert cgroup_cpu_limit(paths) == 4.0


def test_v1_unlimited(tmp_path: Path) -> None:
    paths = _tree(tmp_path, "5:cpu,cpuacct:/\n", {
        "cpu,cpuacct/cpu.cfs_quota_us": "-1",
        "cpu,cpuacct/cpu.cfs_period_us": "100000",
    })
    assert cgroup_cpu_limit(paths) is None
    assert available_cpus(paths, affinity=3) == 3


def test_the_affinity_mask_caps_a_larger_quota(tmp_path: Path) -> None:
    paths = _tree(tmp_path, "0::/\n", {"cpu.max": "800000 100000"})
    assert available_cpus(paths, affinity=2) == 2


def test_no_cgroup_files_at_all(tmp_path: Path) -> None:
    paths = CgroupPaths(root=tmp_path / "none", self_cgroup=tmp_path / "missing")
    assert cgroup_cpu_limit(paths) is None
    assert available_cpus(paths, affinity=5) == 5


def test_this_process_gets_at_least_one_and_at_most_its_affinity() -> None:
    cpus = available_cpus()
    assert 1 <= cpus <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize("preferred", [1, 2, 64])
def test_capped_threads_never_exceeds_the_cpus(preferred: int) -> None:
    cpus = available_cpus()
    assert capped_threads(preferred) == min(preferred, cpus)
    assert capped_threads() == cpus
