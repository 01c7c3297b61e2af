"""The /lab/api routes and /api/config: shapes as jupyterlab_server answers, persistence, errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from carme import create_app
from carme.plugins import PluginError
from tests.serving import TOKEN, serve
from tests.lab.conftest import page_config

TRACKER = "@jupyterlab/notebook-extension:tracker"
SHORTCUTS = "@jupyterlab/shortcuts-extension:shortcuts"


def test_settings_list(lab: httpx.Client) -> None:
    ids = lab.get("/lab/api/settings", params={"ids_only": "true"}).json()["settings"]
    assert {"id": TRACKER} in ids and all(set(entry) == {"id"} for entry in ids)
    full = lab.get("/lab/api/settings").json()["settings"]
    assert [entry["id"] for entry in full] == [entry["id"] for entry in ids]
    tracker = next(entry for entry in full if entry["id"] == TRACKER)
    assert tracker["raw"] == "{}" and tracker["settings"] == {} and tracker["version"] == "4.6.5"
    assert tracker["schema"]["properties"]["codeCellConfig"]["type"] == "object"
    assert tracker["last_modified"] is None and tracker["warning"] is None


def test_settings_put_get_persisted(lab: httpx.Client, jupyter_env: Path) -> None:
    raw = '// mine\n{\n  "recordTiming": true, // trailing comma next\n}\n'
    assert lab.put(f"/lab/api/settings/{TRACKER}", json={"raw": raw}).status_code == 204
    entry = lab.get(f"/lab/api/settings/{TRACKER}").json()
    assert entry["raw"] == raw  # comments kept as written
    assert entry["settings"] == {"recordTiming": True}
    assert entry["last_modified"] and entry["created"]
    on_disk = jupyter_env / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    assert on_disk.read_text() == raw
    listed = next(e for e in lab.get("/lab/api/settings").json()["settings"] if e["id"] == TRACKER)
    assert listed["settings"] == {"recordTiming": True}


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"raw": '{"recordTiming": "yes"}'}, 400, ["recordTiming", "boolean"]),
    ({"raw": "{not json5"}, 400, ["JSON5"]),
    ({"raw": "[1, 2]"}, 400, ["object"]),
    ({"raw": 5}, 400, ["raw"]),
    ({"other": "{}"}, 400, ["raw"]),
])
def test_settings_put_rejects(lab: httpx.Client, jupyter_env: Path, body: dict[str, object], status: int,
                              words: list[str]) -> None:
    response = lab.put(f"/lab/api/settings/{TRACKER}", json=body)
    assert response.status_code == status
    assert all(word in response.json()["message"] for word in words), response.json()
    assert not (jupyter_env / "config" / "lab" / "user-settings").exists()


def test_settings_unknown_plugin(lab: httpx.Client) -> None:
    assert lab.get("/lab/api/settings/@jupyterlab/nothing:here").status_code == 404
    assert lab.put("/lab/api/settings/@jupyterlab/nothing:here", json={"raw": "{}"}).status_code == 404
    response = lab.put("/lab/api/settings/@../..:evil", json={"raw": "{}"})
    assert response.status_code == 404


def test_invalid_user_settings_file_served_as_defaults(lab: httpx.Client, jupyter_env: Path) -> None:
    path = jupyter_env / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    path.parent.mkdir(parents=True)
    path.write_text('{"recordTiming": 3}')
    entry = lab.get(f"/lab/api/settings/{TRACKER}").json()
    assert entry["settings"] == {} and entry["raw"] == "{}"
    assert "recordTiming" in entry["warning"]
    assert path.read_text() == '{"recordTiming": 3}'  # the user's file is left alone


def _app_dir_with_overrides(tmp_path: Path, overrides: dict[str, object]) -> Path:
    """A JupyterLab app dir like the installed one (its folders linked) with settings/overrides.json."""
    installed = Path(page_config_dirs()["staticDir"]).parent
    app_dir = tmp_path / "app"
    (app_dir / "settings").mkdir(parents=True)
    for name in ("static", "schemas", "themes"):
        (app_dir / name).symlink_to(installed / name)
    (app_dir / "settings" / "overrides.json").write_text(json.dumps(overrides))
    return app_dir


def page_config_dirs() -> dict[str, str]:
    from carme_lab.paths import find_app_dir

    return {"staticDir": str(find_app_dir() / "static")}


def test_overrides_json(root: Path, tmp_path: Path, jupyter_env: Path) -> None:
    app_dir = _app_dir_with_overrides(tmp_path, {
        TRACKER: {"recordTiming": True, "codeCellConfig": {"lineNumbers": True}},
        SHORTCUTS: {"newKey": 1},
    })
    labconfig = jupyter_env / "config" / "labconfig"
    labconfig.mkdir()
    (labconfig / "default_settings_overrides.json").write_text(json.dumps({TRACKER: {"recordTiming": False,
                                                                                     "kernelShutdown": True}}))
    app = create_app(str(root), token=TOKEN, extensions=["lab"], settings={"lab.app_dir": str(app_dir)})
    with serve(app) as running, running.client() as c:
        schema = c.get(f"/lab/api/settings/{TRACKER}").json()["schema"]
        props = schema["properties"]
        assert props["recordTiming"]["default"] is True  # overrides.json wins over labconfig
        assert props["kernelShutdown"]["default"] is True
        assert props["codeCellConfig"]["default"]["lineNumbers"] is True
        assert "lineWrap" in props["codeCellConfig"]["default"]  # merged, not replaced
        assert c.get(f"/lab/api/settings/{SHORTCUTS}").json()["schema"]["properties"]["newKey"] == {"default": 1}
        assert page_config(c.get("/lab").text)["appSettingsDir"] == str(app_dir.resolve() / "settings")


NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def test_no_news_or_update_check_from_the_internet_unless_turned_on(lab: httpx.Client) -> None:
    # JupyterLab asks on first load whether to fetch Jupyter news ("none"); a product server
    # makes no request to another origin unless someone turns it on.
    props = lab.get(f"/lab/api/settings/{NOTIFICATION}").json()["schema"]["properties"]
    assert props["fetchNews"]["default"] == "false"
    assert props["checkForUpdates"]["default"] is False


def test_admin_overrides_win_over_carme_defaults(root: Path, tmp_path: Path, jupyter_env: Path) -> None:
    app_dir = _app_dir_with_overrides(tmp_path, {NOTIFICATION: {"fetchNews": "true"}})
    app = create_app(str(root), token=TOKEN, extensions=["lab"], settings={"lab.app_dir": str(app_dir)})
    with serve(app) as running, running.client() as c:
        props = c.get(f"/lab/api/settings/{NOTIFICATION}").json()["schema"]["properties"]
        assert props["fetchNews"]["default"] == "true"
        assert props["checkForUpdates"]["default"] is False  # carme's default for what the admin left alone


def test_workspaces(lab: httpx.Client, jupyter_env: Path) -> None:
    assert lab.get("/lab/api/workspaces").json() == {"workspaces": {"ids": [], "values": []}}
    assert lab.get("/lab/api/workspaces/default").json() == {"data": {}, "metadata": {"id": "default"}}
    workspace = {"data": {"layout-restorer:data": {"main": {"current": "notebook:a.ipynb"}}},
                 "metadata": {"id": "default"}}
    # JupyterLab sends it as text/plain.
    response = lab.put("/lab/api/workspaces/default", content=json.dumps(workspace),
                       headers={"content-type": "text/plain;charset=UTF-8"})
    assert response.status_code == 204
    saved = lab.get("/lab/api/workspaces/default").json()
    assert saved["data"] == workspace["data"]
    assert saved["metadata"]["id"] == "default" and saved["metadata"]["created"] and saved["metadata"]["last_modified"]
    assert (jupyter_env / "config" / "lab" / "workspaces" / "default-37a8.jupyterlab-workspace").is_file()
    listing = lab.get("/lab/api/workspaces").json()["workspaces"]
    assert listing["ids"] == ["default"] and listing["values"][0]["data"] == workspace["data"]
    other = {"data": {}, "metadata": {"id": "a/b c"}}
    assert lab.put("/lab/api/workspaces/a/b c", json=other).status_code == 204
    assert sorted(lab.get("/lab/api/workspaces").json()["workspaces"]["ids"]) == ["a/b c", "default"]
    assert lab.delete("/lab/api/workspaces/a/b c").status_code == 204
    assert lab.delete("/lab/api/workspaces/a/b c").status_code == 404
    assert lab.get("/lab/api/workspaces").json()["workspaces"]["ids"] == ["default"]


def test_workspace_errors(lab: httpx.Client) -> None:
    response = lab.put("/lab/api/workspaces/one", json={"data": {}, "metadata": {"id": "two"}})
    assert response.status_code == 400 and "'two'" in response.json()["message"]
    assert lab.put("/lab/api/workspaces/one", json=[1]).status_code == 400
    assert lab.put("/lab/api/workspaces/one", content=b"{nope").status_code == 400
    assert lab.get("/lab/api/workspaces").json()["workspaces"]["ids"] == []


def test_translations_listings_build_news_lsp(lab: httpx.Client) -> None:
    assert lab.get("/lab/api/translations").json() == {
        "data": {"en": {"displayName": "English", "nativeName": "English"}}, "message": ""}
    assert lab.get("/lab/api/translations/default").json() == {"data": {}, "message": ""}
    assert lab.get("/lab/api/translations/en").json() == {"data": {}, "message": ""}
    french = lab.get("/lab/api/translations/fr_FR")
    assert french.status_code == 200 and "fr_FR" in french.json()["message"]
    listing = lab.get("/lab/api/listings/@jupyterlab/extensionmanager-extension/listings.json").json()
    assert listing == {"blocked_extensions_uris": [], "allowed_extensions_uris": [], "blocked_extensions": [],
                       "allowed_extensions": []}
    assert lab.get("/lab/api/listings/other").status_code == 404
    assert lab.get("/lab/api/build").json() == {"status": "stable", "message": ""}
    assert lab.get("/lab/api/news").json() == {"news": []}
    assert lab.get("/lab/api/update").json() == {"notification": None}
    assert lab.get("/lsp/status").json() == {"version": 2, "sessions": {}, "specs": {}}
    assert lab.get("/api/nbconvert").json() == {}


def test_placeholders_can_be_dropped(root: Path) -> None:
    app = create_app(str(root), token=TOKEN, extensions=["lab"], settings={"lab.placeholders": ["nbconvert"]})
    with serve(app) as running, running.client() as c:
        assert c.get("/lsp/status").status_code == 404
        assert c.get("/api/nbconvert").status_code == 200
    with pytest.raises(PluginError, match="lab.placeholders: unknown"):
        create_app(str(root), token=TOKEN, extensions=["lab"], settings={"lab.placeholders": ["nope"]})


def test_licenses(lab: httpx.Client) -> None:
    report = lab.get("/lab/api/licenses/", params={"format": "json", "full_text": "false"}).json()
    packages = report["bundles"]["@jupyterlab/application-top"]["packages"]
    assert any(p["name"] == "@lumino/widgets" for p in packages)
    assert all("extractedText" not in p for p in packages)
    full = lab.get("/lab/api/licenses/").json()  # what the Licenses panel asks: full texts by default
    assert any(p.get("extractedText") for p in full["bundles"]["@jupyterlab/application-top"]["packages"])
    csv_text = lab.get("/lab/api/licenses", params={"format": "csv"}).text
    assert csv_text.startswith("bundle,name,versionInfo,licenseId")
    assert "# @jupyterlab/application-top" in lab.get("/lab/api/licenses", params={"format": "markdown"}).text
    assert lab.get("/lab/api/licenses", params={"format": "pdf"}).status_code == 400


def test_config_sections(lab: httpx.Client, jupyter_env: Path) -> None:
    section = "jupyterlabapputilsextensionannouncements"
    assert lab.get(f"/api/config/{section}").json() == {}
    assert lab.put("/api/config/demo", json={"x": {"b": 2}, "z": 3}).status_code == 204
    user_file = jupyter_env / "config" / "serverconfig" / "demo.json"
    assert json.loads(user_file.read_text()) == {"x": {"b": 2}, "z": 3}
    patched = lab.patch("/api/config/demo", json={"x": {"c": 4}, "z": None})
    assert patched.status_code == 200 and patched.json() == {"x": {"b": 2, "c": 4}}
    assert lab.get("/api/config/demo").json() == {"x": {"b": 2, "c": 4}}
    assert lab.get("/api/config/bad-name").status_code == 400
    assert lab.put("/api/config/demo", json=[1]).status_code == 400


def test_config_sections_merge_config_path(root: Path, jupyter_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = jupyter_env / "system-config"
    (system / "serverconfig" / "demo.d").mkdir(parents=True)
    (system / "serverconfig" / "demo.d" / "a.json").write_text(json.dumps({"x": {"a": 1, "b": 1}, "y": 1}))
    user = jupyter_env / "config" / "serverconfig"
    user.mkdir(parents=True)
    (user / "demo.json").write_text(json.dumps({"x": {"b": 2}}))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", f"{jupyter_env / 'config'}:{system}")
    app = create_app(str(root), token=TOKEN, extensions=["lab"])
    with serve(app) as running, running.client() as c:
        assert c.get("/api/config/demo").json() == {"x": {"a": 1, "b": 2}, "y": 1}


def test_cookie_requests_need_xsrf(lab_server: object) -> None:
    """What the browser does: cookies from the page, X-XSRFToken from the _xsrf cookie."""
    url = lab_server.url  # type: ignore[attr-defined]
    with httpx.Client(base_url=url, timeout=60) as browser:
        assert browser.get("/lab", params={"token": TOKEN}).status_code == 200
        body = {"data": {}, "metadata": {"id": "default"}}
        assert browser.put("/lab/api/workspaces/default", json=body).status_code == 403
        xsrf = browser.cookies["_xsrf"]
        response = browser.put("/lab/api/workspaces/default", json=body, headers={"X-XSRFToken": xsrf})
        assert response.status_code == 204
        assert browser.get("/lab/api/settings", params={"ids_only": "true"}).status_code == 200
