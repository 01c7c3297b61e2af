"""The folder both servers serve: a directory of many files, a big notebook with outputs, a small
file, and a kernelspec (``benchpy``) that both servers and the direct client launch the same way."""

from __future__ import annotations

import base64
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

KERNEL_NAME = "benchpy"


@dataclass(frozen=True)
class Sizes:
    """How big the fixtures are (the quick mode makes them small)."""

    listing_files: int = 5000
    notebook_mb: float = 20.0


def _notebook(target_bytes: int) -> dict:
    """A valid nbformat 4.5 notebook with stream, image and html outputs, about ``target_bytes``."""
    rng = random.Random(7)
    png = base64.b64encode(rng.randbytes(30_000)).decode()
    text = "".join(f"line {i}: " + "abcdefghij" * 5 + "\n" for i in range(300))
    cells = []
    size = 0
    i = 0
    while size < target_bytes:
        cells.append({
            "cell_type": "code", "id": f"cell-{i}", "execution_count": i + 1, "metadata": {},
            "source": [f"import numpy as np  # cell {i}\n", "plot(np.arange(10))\n"],
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": text},
                {"output_type": "display_data", "metadata": {},
                 "data": {"image/png": png, "text/plain": ["<Figure size 640x480>"]}},
                {"output_type": "execute_result", "execution_count": i + 1, "metadata": {},
                 "data": {"text/html": [f"<table><tr><td>{j}</td></tr></table>\n" for j in range(50)],
                          "text/plain": [f"row {j}\n" for j in range(50)]}},
            ],
        })
        cells.append({"cell_type": "markdown", "id": f"md-{i}", "metadata": {}, "source": [f"## Section {i}\n"]})
        size += len(png) + len(text) + 5000
        i += 1
    return {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}}}


def make_root(root: Path, sizes: Sizes) -> None:
    """Create the served folder (idempotent for the same sizes)."""
    many = root / "many"
    many.mkdir(parents=True, exist_ok=True)
    for i in range(sizes.listing_files):
        path = many / f"file_{i:05d}.txt"
        if not path.exists():
            path.write_text(f"file {i}\n")
    (root / "small.txt").write_text("hello, carme\n" * 40)
    nb = root / "big.ipynb"
    nb.write_text(json.dumps(_notebook(int(sizes.notebook_mb * 1_000_000)), indent=1))


def make_jupyter_home(home: Path) -> dict[str, str]:
    """An isolated Jupyter config/data/runtime tree with the ``benchpy`` kernelspec; returns the env."""
    paths = {"JUPYTER_CONFIG_DIR": home / "config", "JUPYTER_DATA_DIR": home / "data",
             "JUPYTER_RUNTIME_DIR": home / "runtime", "IPYTHONDIR": home / "ipython"}
    for path in paths.values():
        path.mkdir(parents=True, exist_ok=True)
    spec = paths["JUPYTER_DATA_DIR"] / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": kernel_argv("{connection_file}"), "display_name": "bench python", "language": "python",
    }))
    env = {key: str(path) for key, path in paths.items()}
    env["JUPYTER_CONFIG_PATH"] = str(paths["JUPYTER_CONFIG_DIR"])
    env["JUPYTER_PLATFORM_DIRS"] = "0"
    return env


def kernel_argv(connection_file: str) -> list[str]:
    """The one way every target launches the kernel: ipykernel on carme's interpreter."""
    return [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]
