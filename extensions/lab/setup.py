"""Builds carme's own JupyterLab extension into the package before a wheel or sdist is made.

The extension is TypeScript in the repository's labextensions/jupyterlab (one npm workspace),
built by @jupyterlab/builder into carme_lab/labextensions/@carme/jupyterlab/, which is never
committed and which carme-lab serves as a prebuilt labextension. Building a wheel (or sdist) from
a checkout runs `npm ci` (when labextensions/node_modules is missing) and the workspace's build
when the extension is missing; an sdist carries the built files, so a wheel built from it needs no
node. The builder reads the package.json of the JupyterLab core it builds for, that of the
pinned jupyterlab-js, which is therefore a build requirement. Editable installs (`uv sync`) never
run npm: ./dev builds the extension for the working tree.

Everything else about the distribution is in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
BUILT = HERE / "carme_lab" / "labextensions" / "@carme" / "jupyterlab" / "package.json"
WORKSPACE = HERE.parent.parent / "labextensions"
# Where the jupyterlab-js of the build environment put JupyterLab's static files.
CORE = Path(sysconfig.get_path("data")) / "share" / "jupyter" / "lab" / "static"


def build_labextension() -> None:
    """Build the labextension unless it is there; fail clearly when it cannot be built."""
    if BUILT.is_file():
        return
    if not (WORKSPACE / "package.json").is_file():
        raise SystemExit(f"carme-lab: its labextension is not built ({BUILT.parent}) and its sources "
                         f"(labextensions/) are not beside this distribution")
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("carme-lab: building its labextension needs node >= 20 and npm on PATH")
    env = dict(os.environ)
    if (CORE / "package.json").is_file():
        env["JUPYTERLAB_CORE_PATH"] = str(CORE)
    if not (WORKSPACE / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WORKSPACE, check=True, env=env)
    subprocess.run([npm, "run", "build", "--workspace", "jupyterlab"], cwd=WORKSPACE, check=True, env=env)


class BuildPy(build_py):
    def run(self) -> None:
        if not self.editable_mode:
            build_labextension()
            # The package data list may have been taken before the extension existed: take it again.
            self.__dict__.pop("data_files", None)
        super().run()


class Sdist(sdist):
    def run(self) -> None:
        build_labextension()
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
