"""carme.labextensions: prebuilt labextensions found on disk, as the lab and dashboards
extensions both find them (their own tests cover what each serves)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from carme.labextensions import Labextension, discover, jupyter_labextensions_path, read_labextension
from tests.environment import isolated
from tests.lab.conftest import make_labextension


def test_the_first_folder_that_has_a_name_wins(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    user, system = tmp_path / "user", tmp_path / "system"
    make_labextension(user, "shared-ext", version="2.0.0")
    make_labextension(system, "shared-ext", version="1.0.0")
    make_labextension(system, "@scope/scoped-ext")
    (system / "not-built").mkdir()
    (system / "not-built" / "package.json").write_text(json.dumps({"name": "not-built", "version": "1"}))
    (system / "broken").mkdir()
    (system / "broken" / "package.json").write_text("{oops")

    with caplog.at_level(logging.WARNING, logger="carme.labextensions"):
        found = discover([tmp_path / "missing", user, system])

    assert sorted(found) == ["@scope/scoped-ext", "shared-ext"]
    assert found["shared-ext"].version == "2.0.0" and found["shared-ext"].path == user / "shared-ext"
    assert found["@scope/scoped-ext"].path == system / "@scope" / "scoped-ext"
    ignored = " ".join(record.getMessage() for record in caplog.records)
    assert str(system / "not-built" / "package.json") in ignored and str(system / "broken" / "package.json") in ignored


def test_what_a_labextension_says_of_itself(tmp_path: Path) -> None:
    folder = make_labextension(tmp_path, "widgets-ext", version="3.1.0")
    package = json.loads((folder / "package.json").read_text())
    package["jupyterlab"]["disabledExtensions"] = ["@jupyterlab/some:plugin", 7]
    (folder / "package.json").write_text(json.dumps(package))

    ext = read_labextension(folder / "package.json")

    assert isinstance(ext, Labextension)
    assert (ext.name, ext.version, ext.path) == ("widgets-ext", "3.1.0", folder)
    assert ext.install == {"packageManager": "python", "packageName": "widgets-ext"}
    assert ext.disables == ("@jupyterlab/some:plugin",)  # names only
    assert ext.package == package
    assert ext.page_entry() == {"name": "widgets-ext", "load": "static/remoteEntry.0123456789abcdef.js",
                                "extension": "./extension", "style": "./style"}


def test_the_jupyter_data_path_is_searched(tmp_path: Path) -> None:
    with isolated(tmp_path):
        folders = jupyter_labextensions_path()
    assert tmp_path / "data" / "labextensions" in folders  # JUPYTER_DATA_DIR, where --user installs go
