"""Fixtures of the core tests: extensions installed as real distributions for one test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_core import paths as jupyter_paths

from tests.installing import Site


@pytest.fixture
def site_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A site folder on sys.path (and on PYTHONPATH for subprocesses) to install extensions in."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))
    site = Site(folder)
    yield site
    site.cleanup()


@pytest.fixture
def config_levels(jupyter_env: Path) -> dict[str, Path]:
    """The user, sys-prefix and system config dirs (all inside the test's Jupyter home)."""
    return {"user": Path(jupyter_paths.jupyter_config_dir()), "sys-prefix": Path(jupyter_paths.ENV_CONFIG_PATH[0]),
            "system": Path(jupyter_paths.SYSTEM_CONFIG_PATH[0])}
