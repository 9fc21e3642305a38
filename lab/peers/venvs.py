"""The peers' virtualenvs: ``.peers/<peer>`` built from ``lab/peers/requirements/<peer>.txt`` (PyPI, pinned),
rebuilt when that file changes; never ragd's own environment."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

__all__ = ["REQUIREMENTS", "VenvError", "ensure_venv"]

REQUIREMENTS = Path(__file__).with_name("requirements")
INSTALL_TIMEOUT_S = 1800


class VenvError(RuntimeError):
    """A peer's virtualenv could not be built (the message is one line, for the results' ``skipped``)."""


def ensure_venv(peer: str, root: Path) -> Path:
    """The python of ``root/peer``, built (or rebuilt) from its pinned requirements when needed."""
    requirements = REQUIREMENTS / f"{peer}.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = root / peer
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    print(f"ragd bench peers: installing {peer} into {venv} ({requirements.name})", file=sys.stderr, flush=True)
    try:
        if not python.exists():
            subprocess.run(["python3", "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True,
                       capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        lines = [ln for ln in (exc.stderr or "").splitlines() if ln.strip() and "is ignored" not in ln]
        raise VenvError(f"pip install -r {requirements.name} failed: {lines[-1] if lines else exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise VenvError(f"pip install -r {requirements.name} took over {INSTALL_TIMEOUT_S} s") from exc
    stamp.write_text(digest + "\n")
    return python
