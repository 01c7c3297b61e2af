"""The wheel built from the root: only the `carme` import package, and `carme serve` works from
it in a fresh venv made with this machine's Python, with none of the Jupyter server stack."""

from __future__ import annotations

import signal
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.processes import CarmeServe
from tests.wheels import Wheelhouse, clean_venv, run, uv_env

FORBIDDEN = ("tornado", "jupyter_server", "jupyter_client", "core", "extensions", "tests")
# traitlets comes along only as a dependency of jupyter_core and nbformat (which the core needs for
# the Jupyter paths and notebook validation); carme itself never imports it.
TRAITLETS_ALLOWED_BY = {"jupyter-core", "nbformat"}


@pytest.fixture
def wheel(wheels: Wheelhouse) -> Path:
    return wheels["carme"]


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


@pytest.mark.timeout(600)  # a clean venv: its dependencies are installed (downloaded on a cold cache)
def test_carme_serve_from_the_wheel_in_a_clean_venv(wheel: Path, tmp_path: Path,
                                                    carme_serve: Callable[..., CarmeServe]) -> None:
    bin_dir = clean_venv(tmp_path / "venv", wheel)
    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    assert run(bin_dir / "python", "-c", probe, *FORBIDDEN, cwd=tmp_path).split() == []
    who = ("import importlib.metadata as m, re; print(' '.join(sorted(d.metadata['Name'].lower().replace('_', '-') "
           "for d in m.distributions() if any(re.match(r'traitlets\\b', r) for r in (d.requires or [])))))")
    requirers = run(bin_dir / "python", "-c", who, cwd=tmp_path).split()
    assert set(requirers) <= TRAITLETS_ALLOWED_BY, requirers
    assert run(bin_dir / "carme", "--version", cwd=tmp_path).startswith("carme ")

    carme = carme_serve("--token", "t", program=[str(bin_dir / "carme")], env=uv_env())
    url = carme.url()
    base = carme.base_url()
    assert httpx.get(base + "/api").json()["version"].startswith("2.")
    assert httpx.get(url).status_code == 200
    login = httpx.get(base + "/login")  # the template ships in the wheel
    assert login.status_code == 200 and 'name="password"' in login.text
    carme.proc.send_signal(signal.SIGTERM)
    assert carme.wait() == 0
