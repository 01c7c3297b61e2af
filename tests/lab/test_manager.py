"""The read-only extension manager and the plugin manager: listing, enable/disable persisted,
locks, installs refused."""

from __future__ import annotations

import json
from pathlib import Path


from carme import create_app
from tests.serving import TOKEN, serve
from tests.lab.conftest import make_labextension, page_config


def _serve_with_extension(root: Path, jupyter_env: Path, locked: list[str] | None = None):  # type: ignore[no-untyped-def]
    ext = make_labextension(jupyter_env / "data" / "labextensions", "@scope/managed-ext", version="2.1.0")
    package = json.loads((ext / "package.json").read_text())
    package.update(description="A managed one", license="BSD-3-Clause", author={"name": "Someone"},
                   repository={"url": "https://example.org/repo"})
    package["jupyterlab"]["discovery"] = {"server": {}}
    (ext / "package.json").write_text(json.dumps(package))
    if locked:
        (jupyter_env / "config" / "labconfig").mkdir(parents=True, exist_ok=True)
        (jupyter_env / "config" / "labconfig" / "page_config.json").write_text(
            json.dumps({"lockedExtensions": dict.fromkeys(locked, True)}))
    return serve(create_app(str(root), token=TOKEN, extensions=["lab"]))


def test_extension_manager(root: Path, jupyter_env: Path) -> None:
    with _serve_with_extension(root, jupyter_env) as running, \
            running.client() as c:
        config = page_config(c.get("/lab").text)
        assert config["extensionManager"]["name"] == "read-only"
        assert config["extensionManager"]["can_install"] is False
        response = c.get("/lab/api/extensions", params={"refresh": "0"})
        assert response.status_code == 200 and 'rel="last"' in response.headers["link"]
        entry = next(e for e in response.json() if e["name"] == "@scope/managed-ext")
        assert entry["installed_version"] == "2.1.0" and entry["enabled"] is True and entry["installed"] is True
        assert (entry["pkg_type"], entry["companion"], entry["author"]) == ("prebuilt", "server", "Someone")
        assert entry["repository_url"] == "https://example.org/repo" and entry["description"] == "A managed one"
        assert c.get("/lab/api/extensions", params={"query": "widgets", "page": "1"}).json() == []

        disabled = c.post("/lab/api/extensions", json={"cmd": "disable", "extension_name": "@scope/managed-ext"})
        assert disabled.status_code == 201 and disabled.json()["needs_restart"] == ["frontend"]
        saved = json.loads((jupyter_env / "config" / "labconfig" / "page_config.json").read_text())
        assert saved["disabledExtensions"] == {"@scope/managed-ext": True}
        assert "@scope/managed-ext" in page_config(c.get("/lab").text)["disabledExtensions"]
        entry = next(e for e in c.get("/lab/api/extensions").json() if e["name"] == "@scope/managed-ext")
        assert entry["enabled"] is False

        enabled = c.post("/lab/api/extensions", json={"cmd": "enable", "extension_name": "@scope/managed-ext"})
        assert enabled.status_code == 201
        assert "@scope/managed-ext" not in page_config(c.get("/lab").text)["disabledExtensions"]

        install = c.post("/lab/api/extensions", json={"cmd": "install", "extension_name": "something"})
        assert install.status_code == 500 and install.json()["status"] == "error"
        assert "pip" in install.json()["message"]
        bad = c.post("/lab/api/extensions", json={"cmd": "explode", "extension_name": "x"})
        assert bad.status_code == 422 and "explode" in bad.json()["message"]
        assert c.post("/lab/api/extensions", json={"cmd": "enable"}).status_code == 422


def test_plugin_manager(root: Path, jupyter_env: Path) -> None:
    with _serve_with_extension(root, jupyter_env, locked=["@jupyterlab/apputils-extension:themes"]) as running, \
            running.client() as c:
        assert c.get("/lab/api/plugins").json() == {"lockRules": ["@jupyterlab/apputils-extension:themes"],
                                                    "allLocked": False}
        refused = c.post("/lab/api/plugins", json={"cmd": "disable",
                                                   "plugin_name": "@jupyterlab/apputils-extension:themes"})
        assert refused.status_code == 500 and "locked" in refused.json()["message"]
        whole = c.post("/lab/api/plugins", json={"cmd": "disable", "plugin_name": "@jupyterlab/apputils-extension"})
        assert whole.status_code == 500  # the extension holds a locked plugin
        ok = c.post("/lab/api/plugins", json={"cmd": "disable", "plugin_name": "@jupyterlab/toc-extension:registry"})
        assert ok.status_code == 201
        config = page_config(c.get("/lab").text)
        assert "@jupyterlab/toc-extension:registry" in config["disabledExtensions"]
        assert "@jupyterlab/apputils-extension:themes" not in config["disabledExtensions"]
        saved = json.loads((jupyter_env / "config" / "labconfig" / "page_config.json").read_text())
        assert saved["lockedExtensions"] == {"@jupyterlab/apputils-extension:themes": True}  # kept
        assert c.post("/lab/api/plugins", json={"cmd": "install", "plugin_name": "x"}).status_code == 422
