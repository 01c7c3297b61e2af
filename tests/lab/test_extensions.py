"""Federated labextensions: discovery on the Jupyter data path and from carme extensions,
serving, caching headers, schemas, themes, disabling; and the static bundle's headers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

from carme import create_app, hookimpl
from carme_lab.service import COLLABORATION_FRONTEND
from carme.server import Server
from tests.serving import TOKEN, serve
from tests.lab.conftest import make_labextension, page_config

REMOTE = "static/remoteEntry.0123456789abcdef.js"


class ShipsLabextension:
    """A carme extension that ships a prebuilt labextension in its package."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def carme_lab_register_labextension_paths(self, server: Server) -> list[Path]:
        return [self.folder]


def test_hook_carme_lab_register_labextension_paths(root: Path, tmp_path: Path, jupyter_env: Path) -> None:
    user_exts = jupyter_env / "data" / "labextensions"  # where `pip install --user` puts them
    make_labextension(user_exts, "plain-ext", marker="user")
    make_labextension(user_exts, "@scope/scoped-ext")
    shipped = tmp_path / "shipped"
    make_labextension(shipped, "carme-own-ext")
    # The copy a carme extension ships goes with its server side, so it shadows a pip-installed one.
    make_labextension(shipped, "plain-ext", marker="shipped")
    (user_exts / "not-built").mkdir()
    (user_exts / "not-built" / "package.json").write_text(json.dumps({"name": "not-built", "version": "1"}))
    (user_exts / "broken").mkdir()
    (user_exts / "broken" / "package.json").write_text("{oops")

    app = create_app(str(root), token=TOKEN, extensions=["lab"], plugins=[ShipsLabextension(shipped)])
    with serve(app) as running, running.client() as c:
        config = page_config(c.get("/lab").text)
        entries = {e["name"]: e for e in config["federated_extensions"]}
        assert {"plain-ext", "@scope/scoped-ext", "carme-own-ext"} <= set(entries)
        assert not {"not-built", "broken"} & set(entries)
        assert entries["plain-ext"] == {"name": "plain-ext", "load": REMOTE, "extension": "./extension",
                                        "style": "./style"}
        assert str(shipped) in config["labextensionsPath"]

        served = c.get(f"/lab/extensions/plain-ext/{REMOTE}")
        assert served.status_code == 200 and "shipped" in served.text
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        scoped = c.get(f"/lab/extensions/@scope/scoped-ext/{REMOTE}")
        assert scoped.status_code == 200 and "@scope/scoped-ext" in scoped.text
        style = c.get("/lab/extensions/carme-own-ext/static/style.js")
        assert style.status_code == 200 and style.headers["cache-control"] == "no-cache"
        assert style.headers.get("etag")
        again = c.get("/lab/extensions/carme-own-ext/static/style.js", headers={"if-none-match": style.headers["etag"]})
        assert again.status_code == 304
        assert c.get("/lab/extensions/nope/static/x.js").status_code == 404
        assert c.get("/lab/extensions/plain-ext/static/missing.js").status_code == 404
        assert c.get("/lab/extensions/plain-ext/..%2F..%2F..%2Fetc/passwd").status_code == 404
        assert c.get("/lab/extensions/plain-ext/static/%2E%2E/%2E%2E/%2E%2E/x").status_code == 404

        ids = [e["id"] for e in c.get("/lab/api/settings", params={"ids_only": "true"}).json()["settings"]]
        assert {"plain-ext:plugin", "@scope/scoped-ext:plugin", "carme-own-ext:plugin"} <= set(ids)
        entry = c.get("/lab/api/settings/@scope/scoped-ext:plugin").json()
        assert entry["version"] == "1.0.0" and entry["schema"]["properties"]["answer"]["default"] == 42
        assert c.put("/lab/api/settings/@scope/scoped-ext:plugin", json={"raw": '{"answer": "x"}'}).status_code == 400
        assert c.put("/lab/api/settings/@scope/scoped-ext:plugin", json={"raw": '{"answer": 7}'}).status_code == 204

        theme = c.get("/lab/api/themes/carme-own-ext/index.css")
        assert theme.status_code == 200 and "color: red" in theme.text
        assert c.get("/lab/api/themes/@jupyterlab/theme-dark-extension/index.css").status_code == 200
        assert c.get("/lab/api/themes/../../../etc/passwd").status_code == 404

        # Installed while the server runs: found on the next page load, as in JupyterLab.
        make_labextension(user_exts, "late-ext")
        names = [e["name"] for e in page_config(c.get("/lab").text)["federated_extensions"]]
        assert "late-ext" in names
        assert c.get(f"/lab/extensions/late-ext/{REMOTE}").status_code == 200


def test_pip_installed_labextensions_appear(lab: httpx.Client) -> None:
    """Every labextension pip put in sys.prefix (jupyterlab_widgets, when installed) is loaded,
    except the collaboration frontend while the collab extension is off."""
    folder = Path(sys.prefix) / "share" / "jupyter" / "labextensions"
    installed = {json.loads(p.read_text())["name"]: json.loads(p.read_text())["jupyterlab"]["_build"]["load"]
                 for p in [*folder.glob("[!@]*/package.json"), *folder.glob("@*/*/package.json")]}
    collaboration = {name: installed.pop(name) for name in COLLABORATION_FRONTEND if name in installed}
    entries = {e["name"]: e["load"] for e in page_config(lab.get("/lab").text)["federated_extensions"]}
    assert installed.items() <= entries.items()
    assert not set(collaboration) & set(entries)
    for name, load in installed.items():
        assert lab.get(f"/lab/extensions/{name}/{load}").status_code == 200


def test_disabled_extensions_from_page_config_files(root: Path, jupyter_env: Path) -> None:
    labconfig = jupyter_env / "config" / "labconfig"
    labconfig.mkdir()
    (labconfig / "page_config.json").write_text(json.dumps({
        "disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True, "re-enabled": False},
        "lockedExtensions": {"@jupyterlab/x:y": True},
    }))
    ext = make_labextension(jupyter_env / "data" / "labextensions", "disabler")
    package = json.loads((ext / "package.json").read_text())
    package["jupyterlab"]["disabledExtensions"] = ["@jupyterlab/other-extension"]
    (ext / "package.json").write_text(json.dumps(package))
    app = create_app(str(root), token=TOKEN, extensions=["lab"])
    with serve(app) as running, running.client() as c:
        config = page_config(c.get("/lab").text)
    assert config["disabledExtensions"] == ["@jupyterlab/apputils-extension:announcements", "@jupyterlab/other-extension"]
    assert config["lockedExtensions"] == ["@jupyterlab/x:y"]


def test_static_bundle_headers(lab: httpx.Client) -> None:
    package = lab.get("/static/lab/package.json")
    assert package.status_code == 200 and package.json()["version"] == "4.6.5"
    assert package.headers["cache-control"] == "no-cache"
    chunk = lab.get("/static/lab/jlab_core.de9b5a093e5b1d3e.js")
    assert chunk.headers["cache-control"] == "public, max-age=31536000, immutable"
    versioned = lab.get("/static/lab/style.js", params={"v": "abc"})
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert lab.head("/static/lab/package.json").status_code == 200
    assert lab.post("/static/lab/package.json").status_code == 405
    for bad in ("/static/lab/../../../../etc/passwd", "/static/lab/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                "/static/lab/..%2f..%2f..%2f..%2fetc%2fpasswd"):
        response = lab.get(bad)
        assert response.status_code == 404, bad
        assert "root:" not in response.text
