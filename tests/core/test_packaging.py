"""The wheel built from the root: only the `carme` import package, and `carme serve` works from
it in a fresh venv made with this machine's Python, with none of the Jupyter server stack."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.processes import Process

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("tornado", "jupyter_server", "jupyter_client", "core", "extensions", "tests")
# traitlets comes along only as a dependency of jupyter_core and nbformat (which the core needs for
# the Jupyter paths and notebook validation); carme itself never imports it.
TRAITLETS_ALLOWED_BY = {"jupyter-core", "nbformat"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the root distribution from a copy of its sources (the checkout stays untouched)."""
    uv = shutil.which("uv")
    assert uv, "uv is needed (./dev installs it)"
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "core", src / "core", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(out), str(src)], check=True, capture_output=True,
                   env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"}, timeout=300)
    (built,) = out.glob("carme-*.whl")
    return built


def test_wheel_installs_only_carme(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"carme", next(t for t in top if t.endswith(".dist-info"))}
    for needed in ("carme/__init__.py", "carme/api/server.py", "carme/templates/login.html", "carme/py.typed",
                   "carme/cli.py"):
        assert needed in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "carme = carme.cli:main" in entry_points
    for name in names:
        if name.endswith(".py"):
            source = zipfile.ZipFile(wheel).read(name).decode()
            for banned in ("traitlets", "tornado", "jupyter_server", "jupyter_client"):
                assert f"import {banned}" not in source and f"from {banned}" not in source, (name, banned)


def test_carme_serve_from_the_wheel_in_a_clean_venv(wheel: Path, tmp_path: Path, root: Path) -> None:
    uv = shutil.which("uv")
    assert uv
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), str(wheel)], check=True, env=env,
                   timeout=300)

    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    present = subprocess.run([str(python), "-c", probe, *FORBIDDEN], cwd=tmp_path, env=env, check=True,
                             capture_output=True, text=True).stdout.split()
    assert present == []
    who = ("import importlib.metadata as m, re; print(' '.join(sorted(d.metadata['Name'].lower().replace('_', '-') "
           "for d in m.distributions() if any(re.match(r'traitlets\\b', r) for r in (d.requires or [])))))")
    requirers = subprocess.run([str(python), "-c", who], cwd=tmp_path, env=env, check=True, capture_output=True,
                               text=True).stdout.split()
    assert set(requirers) <= TRAITLETS_ALLOWED_BY, requirers
    version = subprocess.run([str(venv / "bin" / "carme"), "--version"], cwd=tmp_path, env=env, check=True,
                             capture_output=True, text=True).stdout
    assert version.startswith("carme ")

    carme = Process([str(venv / "bin" / "carme"), "serve", str(root), "--no-browser", "--port", "0", "--token", "t"],
                    cwd=tmp_path, env=env)
    try:
        url = carme.url()
        base = url.split("/api/")[0]
        assert httpx.get(base + "/api").json()["version"].startswith("2.")
        assert httpx.get(url).status_code == 200
        login = httpx.get(base + "/login")  # the template ships in the wheel
        assert login.status_code == 200 and 'name="password"' in login.text
        carme.proc.send_signal(signal.SIGTERM)
        assert carme.wait() == 0
    finally:
        carme.stop()
