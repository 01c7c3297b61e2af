"""Wheels of the repo's distributions, and clean venvs to install them in: the one wheel builder.

Each wheel is built from a copy of its sources, so the checkout stays untouched (setuptools
writes build/ and egg-info next to the sources, and a stale build/ would leak into the wheel).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# distribution -> (its folder in the repo, the entries its build needs; None: the whole folder)
SOURCES: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "carme": (".", ("pyproject.toml", "setup.py", "README.md", "core")),
    "carme-lab": ("extensions/lab", None),
}
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")


def uv() -> str:
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to build the wheels and make the venv (./dev installs it)")
    return found


def uv_env() -> dict[str, str]:
    """The environment for uv: this machine's Python only; nothing of the test venv."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def run(*args: str | Path, cwd: Path | None = None) -> str:
    """Run a command (installs may take minutes on a cold cache); its stdout. Fails with its output."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, env=uv_env(), cwd=cwd)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(name: str, work: Path) -> Path:
    """Build distribution ``name`` (a key of SOURCES) from a copy of its sources in ``work``."""
    folder, entries = SOURCES[name]
    source, src = REPO / folder, work / "src"
    if entries is None:
        shutil.copytree(source, src, ignore=IGNORE)
    else:
        src.mkdir()
        for entry in entries:
            if (source / entry).is_dir():
                shutil.copytree(source / entry, src / entry, ignore=IGNORE)
            else:
                shutil.copy(source / entry, src / entry)
    run(uv(), "build", "--quiet", "--wheel", "--out-dir", work / "dist", src)
    (wheel,) = (work / "dist").glob("*.whl")
    return wheel


class Wheelhouse:
    """Wheels built on first use, once per test session."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.built: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self.built:
            self.built[name] = build_wheel(name, self.factory.mktemp(f"wheel-{name}"))
        return self.built[name]


def clean_venv(folder: Path, *wheels: Path) -> Path:
    """A new venv on this machine's Python with only ``wheels`` (and their dependencies); its bin/."""
    run(uv(), "venv", "--quiet", "--python", sys.executable, folder)
    run(uv(), "pip", "install", "--quiet", "--python", folder / "bin" / "python", *wheels)
    return folder / "bin"
