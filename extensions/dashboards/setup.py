"""Builds the dashboard page's client into the package before a wheel or sdist is made.

The client is TypeScript in the repository's labextensions/ (one npm workspace); its built files
go to carme_dashboards/static/client/, which is never committed. A wheel without them would serve
pages whose widgets never come alive, so building a wheel (or sdist) from a checkout runs
`npm ci` (when labextensions/node_modules is missing) and `npm run build` when the client is
missing; an sdist carries the built files, so a wheel built from it needs no node. Editable
installs (`uv sync`) never run npm: ./dev builds the client for the working tree.

Everything else about the distribution is in pyproject.toml.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "carme_dashboards" / "static" / "client"
WORKSPACE = HERE.parent.parent / "labextensions"


def build_client() -> None:
    """Build the client unless it is there; fail clearly when it cannot be built."""
    if (CLIENT / "dashboard.js").is_file():
        return
    if not (WORKSPACE / "package.json").is_file():
        raise SystemExit(f"carme-dashboards: the page client is not built ({CLIENT}) and its sources "
                         f"(labextensions/) are not beside this distribution")
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("carme-dashboards: building the page client needs node >= 20 and npm on PATH")
    if not (WORKSPACE / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WORKSPACE, check=True)
    subprocess.run([npm, "run", "build", "--workspace", "dashboard"], cwd=WORKSPACE, check=True)


class BuildPy(build_py):
    def run(self) -> None:
        if not self.editable_mode:
            build_client()
            # The package data list may have been taken before the client existed: take it again.
            self.__dict__.pop("data_files", None)
        super().run()


class Sdist(sdist):
    def run(self) -> None:
        build_client()
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
