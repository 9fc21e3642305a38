"""How many CPUs this process may use: the container's CPU quota, then its CPU affinity.

``os.cpu_count()`` and the runtimes' own defaults (llama.cpp, ONNX Runtime, torch's OpenMP pool) count the
host's cores, not what a container is given: a pod limited to 2 CPUs on a 32-core node would start 32
threads each and spend its quota switching between them. Thread counts left unset are sized from
:func:`available_cpus` instead; a value set in the environment always wins.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["CgroupPaths", "available_cpus", "capped_threads", "cgroup_cpu_limit"]


class CgroupPaths:
    """Where the cgroup files live (the real ones by default; tests point it at files they write)."""

    def __init__(self, root: Path = Path("/sys/fs/cgroup"), self_cgroup: Path = Path("/proc/self/cgroup")) -> None:
        self.root = root
        self.self_cgroup = self_cgroup

    def _own_paths(self, controller: str | None) -> list[str]:
        """This process's cgroup paths for ``controller`` (None: the v2 unified hierarchy), deepest first."""
        try:
            lines = self.self_cgroup.read_text().splitlines()
        except OSError:
            return []
        found: list[str] = []
        for line in lines:
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            names, path = [n for n in parts[1].split(",") if n], parts[2]
            if (controller is None and not names) or (controller is not None and controller in names):
                found.append(path.strip())
        return found

    def v2_files(self) -> list[Path]:
        """``cpu.max`` of this process's cgroup and its ancestors, then the namespace root's."""
        files: list[Path] = []
        for path in self._own_paths(None):
            node = self.root / path.lstrip("/")
            while True:
                files.append(node / "cpu.max")
                if node == self.root or self.root not in node.parents:
                    break
                node = node.parent
        files.append(self.root / "cpu.max")
        return files

    def v1_dirs(self) -> list[Path]:
        """The cgroup v1 ``cpu`` controller directories that may hold this process's CFS quota."""
        dirs: list[Path] = []
        for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            base = self.root / mount
            dirs.extend(base / p.lstrip("/") for p in self._own_paths("cpu"))
            dirs.append(base)
        return dirs


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v2_limit(text: str) -> float | None:
    """``cpu.max`` holds ``"<quota> <period>"`` or ``"max <period>"`` (no limit)."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    quota, period = int(parts[0]), int(parts[1])
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit(paths: CgroupPaths | None = None) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (1.5 for a 150000/100000 quota); None when unlimited.

    cgroup v2 (``cpu.max``, the tightest along the hierarchy) first, then v1 (``cpu.cfs_quota_us`` over
    ``cpu.cfs_period_us``; -1 means none)."""
    paths = paths or CgroupPaths()
    limits = [limit for f in paths.v2_files() if (text := _read(f)) and (limit := _v2_limit(text)) is not None]
    if limits:
        return min(limits)
    for directory in paths.v1_dirs():
        quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            q, p = int(quota), int(period)
            return q / p if q > 0 and p > 0 else None
    return None


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def available_cpus(paths: CgroupPaths | None = None, affinity: int | None = None) -> int:
    """Whole CPUs this process may use: the cgroup quota rounded up, at most the CPUs it may run on, at least 1."""
    cpus = affinity if affinity is not None else _affinity()
    limit = cgroup_cpu_limit(paths)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


def capped_threads(preferred: int | None = None) -> int:
    """A default thread count: ``preferred`` when the container has that many CPUs, else all it has
    (``preferred`` None: all it has)."""
    cpus = available_cpus()
    return cpus if preferred is None else max(1, min(preferred, cpus))
