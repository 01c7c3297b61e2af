"""Kernelspec discovery rules, resource URLs, launch argv/env and the kernel's working folder
(no kernel process needed)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from carme.kernels.manager import cwd_for_path
from carme.kernels.provisioner import LocalProvisioner
from carme.kernels.specs import KernelSpec, KernelSpecManager, NoSuchKernelSpec


def write_spec(folder: Path, **fields: object) -> Path:
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps({"argv": ["x", "{connection_file}"], **fields}))
    return folder


def test_first_folder_wins_names_are_case_insensitive_and_python3_is_built_in(tmp_path: Path) -> None:
    user, system = tmp_path / "user", tmp_path / "system"
    write_spec(user / "Julia", display_name="Julia (user)")
    write_spec(system / "julia", display_name="Julia (system)")
    write_spec(system / "r", display_name="R")
    specs = KernelSpecManager(dirs=[str(user), str(system)]).all_specs()
    assert specs["julia"].display_name == "Julia (user)" and specs["r"].display_name == "R"
    assert specs["python3"].argv[0] == sys.executable and specs["python3"].resource_dir is not None
    write_spec(user / "python3", display_name="Mine")
    manager = KernelSpecManager(dirs=[str(user), str(system)])
    assert manager.get("Python3").display_name == "Mine"
    with pytest.raises(NoSuchKernelSpec, match="No such kernel named nope"):
        manager.get("nope")


def test_resource_urls_carry_the_base_url_and_default_falls_back(tmp_path: Path) -> None:
    folder = write_spec(tmp_path / "k" / "echo", display_name="Echo")
    (folder / "logo-svg.svg").write_text("<svg/>")
    manager = KernelSpecManager(default_name="missing", dirs=[str(tmp_path / "k")])
    model = manager.model(manager.get("echo"), "/user/me/")
    assert model["resources"] == {"logo-svg": "/user/me/kernelspecs/echo/logo-svg.svg"}
    assert manager.get("echo").resource_path("../echo/kernel.json") is None
    assert manager.models()["default"] in manager.models()["kernelspecs"]  # never a spec that does not exist


def test_launch_argv_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = KernelSpec("k", ["python", "-m", "k", "-f", "{connection_file}", "--res={resource_dir}"], "K",
                      env={"EXTRA_PATH": "${HOME}/bin", "PLAIN": "1"}, resource_dir=tmp_path)
    argv = LocalProvisioner._argv(spec, tmp_path / "kernel-1.json")
    assert argv == [sys.executable, "-m", "k", "-f", str(tmp_path / "kernel-1.json"), f"--res={tmp_path}"]
    monkeypatch.setenv("HOME", "/home/someone")
    env = LocalProvisioner._env(spec, {"JPY_SESSION_NAME": "/x/nb.ipynb"})
    assert env["EXTRA_PATH"] == "/home/someone/bin" and env["PLAIN"] == "1"
    assert env["JPY_PARENT_PID"] == str(os.getpid()) and env["JPY_SESSION_NAME"] == "/x/nb.ipynb"


def test_kernel_cwd_stays_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    assert cwd_for_path(root, "a/b/nb.ipynb") == root / "a" / "b"
    assert cwd_for_path(root, "a/b/missing/deeper/nb.ipynb") == root / "a" / "b"
    assert cwd_for_path(root, "a/b") == root / "a" / "b"  # a folder path is itself
    assert cwd_for_path(root, None) == root and cwd_for_path(root, "") == root
    assert cwd_for_path(root, "../outside/nb.ipynb") == root
    assert cwd_for_path(root, "link/nb.ipynb") == root  # a symlink out of the root is not followed
