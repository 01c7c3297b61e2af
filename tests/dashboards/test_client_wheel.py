"""The carme-dashboards wheel carries the built page client; building a wheel where the client is
neither built nor buildable (no labextensions/ beside the distribution) fails and says why,
instead of making a wheel whose pages never come alive."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from carme_dashboards.client import CLIENT_DIR, SCRIPT, STYLE, THEMES, check_client

DIST = Path(__file__).resolve().parents[2] / "extensions" / "dashboards"
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")


def build_wheel(src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build the wheel (./dev installs it)")
    return subprocess.run([uv, "build", "--wheel", "--out-dir", str(out), str(src)], capture_output=True, text=True,
                          env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"}, timeout=300)


def test_the_wheel_carries_the_built_client(tmp_path: Path) -> None:
    built = check_client()
    src = tmp_path / "dashboards"
    shutil.copytree(DIST, src, ignore=IGNORE)
    result = build_wheel(src, tmp_path / "dist")
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("carme_dashboards-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"carme_dashboards/static/client/{path.relative_to(built).as_posix()}"
                for path in built.rglob("*") if path.is_file()}
    assert expected <= names
    for name in (SCRIPT, STYLE, *THEMES.values()):
        assert f"carme_dashboards/static/client/{name}" in names
    assert any(name.startswith("carme_dashboards/static/client/assets/KaTeX_") for name in names)


def test_no_wheel_without_a_client(tmp_path: Path) -> None:
    src = tmp_path / "dashboards"
    shutil.copytree(DIST, src, ignore=shutil.ignore_patterns(CLIENT_DIR.name, "__pycache__", "*.egg-info", "build"))
    assert not (src / "carme_dashboards" / "static" / "client").exists()
    result = build_wheel(src, tmp_path / "dist")
    assert result.returncode != 0
    assert "the page client is not built" in result.stderr + result.stdout
    assert not list((tmp_path / "dist").glob("*.whl"))
