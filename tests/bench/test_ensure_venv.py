"""bench's throwaway venvs (the anchors of the bench and of the gateway and hub tests) are made
again when what they were installed from changes, and only then: real uv, two local wheels."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from bench.servers import ensure_venv

NAME = "carme_pin_probe"


def wheel(folder: Path, version: str, name: str = NAME) -> Path:
    """A pure-Python wheel of one module saying its version (what pip needs of a wheel, no more)."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {f"{name}.py": f"VERSION = {version!r}\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: carme-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def installed(python: Path, name: str = NAME) -> str:
    return subprocess.run([str(python), "-c", f"import {name}; print({name}.VERSION)"], capture_output=True,
                          text=True).stdout.strip()


def test_a_changed_pin_remakes_the_venv_and_an_unchanged_one_keeps_it(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    one, two = wheel(tmp_path, "1.0"), wheel(tmp_path, "2.0")
    python = ensure_venv(venv, [str(one)])
    assert installed(python) == "1.0"
    kept = venv / "left-by-a-run"
    kept.touch()
    assert ensure_venv(venv, [str(one)]) == python and kept.exists()  # same requirements: not touched
    assert installed(ensure_venv(venv, [str(two)])) == "2.0"
    assert not kept.exists()  # made again from scratch
    python = ensure_venv(venv, [str(wheel(tmp_path, "1.0", "carme_other_probe"))])
    assert installed(python, "carme_other_probe") == "1.0" and installed(python) == ""  # a dropped one is gone
