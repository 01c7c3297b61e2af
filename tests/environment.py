"""An isolated Jupyter environment: every Jupyter path (config, data, runtime) in a folder of the
test's own, no JUPYTER_TOKEN, no CARME_* setting from the machine. The one place that says what
isolation means, for the per-test fixture (tests/conftest.py), module-scoped servers and
subprocesses alike."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from jupyter_core import paths as jupyter_paths

# Variables that would let the machine's configuration into a test.
LEAKY_PREFIXES = ("CARME_", "JUPYTER_")


def jupyter_variables(home: Path) -> dict[str, str]:
    """The Jupyter path variables pointing into ``home`` (its folders are made here)."""
    folders = {"JUPYTER_CONFIG_DIR": home / "config", "JUPYTER_DATA_DIR": home / "data",
               "JUPYTER_RUNTIME_DIR": home / "runtime"}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {**{name: str(folder) for name, folder in folders.items()},
            "JUPYTER_CONFIG_PATH": str(home / "config"), "JUPYTER_PLATFORM_DIRS": "0"}


def isolated_environ(home: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for a subprocess: ``base`` (default os.environ) without any CARME_* or
    JUPYTER_* variable, plus the Jupyter paths into ``home``."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if not k.startswith(LEAKY_PREFIXES)}
    env.update(jupyter_variables(home))
    return env


def isolate(home: Path, mp: pytest.MonkeyPatch) -> Path:
    """Isolate this process (undone with ``mp``); returns ``home``."""
    for key in list(os.environ):
        if key.startswith(LEAKY_PREFIXES):
            mp.delenv(key)
    for name, value in jupyter_variables(home).items():
        mp.setenv(name, value)
    # The sys-prefix and system config dirs are fixed by jupyter_core at import: move them too,
    # so no test reads the machine's config or writes into the venv (carme extension enable).
    mp.setattr(jupyter_paths, "ENV_CONFIG_PATH", [str(home / "env-config")])
    mp.setattr(jupyter_paths, "SYSTEM_CONFIG_PATH", [str(home / "system-config")])
    return home


@contextlib.contextmanager
def isolated(home: Path) -> Iterator[Path]:
    """:func:`isolate` for a block (a module-scoped fixture, where ``monkeypatch`` is not available)."""
    with pytest.MonkeyPatch.context() as mp:
        yield isolate(home, mp)
