"""labextensions/ is linted (eslint with typescript-eslint) and type-checks in strict mode."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

WORKSPACE = Path(__file__).resolve().parents[2] / "labextensions"


def npm(*args: str) -> subprocess.CompletedProcess[str]:
    npm = shutil.which("npm")
    if npm is None or not (WORKSPACE / "node_modules").is_dir():
        pytest.fail("labextensions/ is not installed: run `npm ci` there (./dev does it)")
    return subprocess.run([npm, *args], cwd=WORKSPACE, capture_output=True, text=True, timeout=300)


def test_lint() -> None:
    result = npm("run", "lint", "--silent")
    assert result.returncode == 0, result.stdout + result.stderr


def test_typecheck() -> None:
    result = npm("run", "typecheck", "--silent")
    assert result.returncode == 0, result.stdout + result.stderr
