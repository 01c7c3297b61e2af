"""The JupyterLab page: page config, routes, redirects, cookies, base URL, mounting, the hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount

from carme import create_app, hookimpl
from carme.server import Server
from tests.serving import TOKEN, Served, serve
from tests.lab.conftest import page_config

MAIN_JS = "main.580360276a959490.js"  # jupyterlab-js 4.6.5


def test_lab_page_config(lab_server: Served, root: Path) -> None:
    with httpx.Client(base_url=lab_server.url, timeout=60) as client:
        response = client.get("/lab", params={"token": TOKEN})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        html = response.text
        config = page_config(html)
        # The token never reaches the page: the browser holds the login cookie instead.
        assert TOKEN not in html
        assert config["token"] == ""
        assert client.cookies.get("_xsrf")
        assert any(name.startswith("username-") for name in client.cookies)
        xsrf_header = [h for h in response.headers.get_list("set-cookie") if h.startswith("_xsrf=")][0]
        assert "httponly" not in xsrf_header.lower() and "Path=/" in xsrf_header
        # A reload keeps the same _xsrf cookie (JupyterLab has already read it).
        again = client.get("/lab")
        assert again.status_code == 200
        assert not [h for h in again.headers.get_list("set-cookie") if h.startswith("_xsrf=")]
    assert config["baseUrl"] == "/" and config["wsUrl"] == ""
    assert config["appVersion"] == "4.6.5" and config["appName"] == "JupyterLab"
    assert config["fullStaticUrl"] == "/static/lab"
    assert config["fullSettingsUrl"] == "/lab/api/settings" and config["settingsUrl"] == "/lab/api/settings"
    assert config["fullLabextensionsUrl"] == "/lab/extensions"
    assert config["fullWorkspacesApiUrl"] == "/lab/api/workspaces"
    assert config["fullTranslationsApiUrl"] == "/lab/api/translations"
    assert config["fullThemesUrl"] == "/lab/api/themes"
    assert config["terminalsAvailable"] is False
    assert config["mode"] == "multiple-document" and config["workspace"] == "default" and config["treePath"] == ""
    assert config["serverRoot"] == str(root.resolve())
    assert config["notebookVersion"] == "[2, 21, 1]"
    assert f'src="/static/lab/{MAIN_JS}?v=' in html


def test_page_routes(lab: httpx.Client) -> None:
    config = page_config(lab.get("/lab/tree/sub dir/a.ipynb").text)
    assert config["treePath"] == "sub dir/a.ipynb" and config["mode"] == "multiple-document"
    config = page_config(lab.get("/lab/workspaces/mine").text)
    assert config["workspace"] == "mine" and config["treePath"] == ""
    config = page_config(lab.get("/lab/workspaces/mine/tree/x/y.txt").text)
    assert (config["workspace"], config["treePath"]) == ("mine", "x/y.txt")
    config = page_config(lab.get("/doc/tree/a.ipynb").text)
    assert config["mode"] == "single-document" and config["treePath"] == "a.ipynb"
    slash = lab.get("/lab/", follow_redirects=False)
    assert slash.status_code == 307 and slash.headers["location"].endswith("/lab")
    # An unknown page is JupyterLab's own not-found page (as jupyterlab_server), an unknown API a JSON 404.
    missing = lab.get("/lab/nonsense/deeper")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert page_config(missing.text)["notFoundUrl"] == "/lab/nonsense/deeper"
    api = lab.get("/lab/api/nonsense")
    assert api.status_code == 404 and api.json()["message"] == "Not found: /lab/api/nonsense"


def test_redirects(lab: httpx.Client) -> None:
    response = lab.get("/", params={"a": "1"}, follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "/lab?a=1"
    response = lab.get("/tree/some dir/x.ipynb", follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "/lab/tree/some%20dir/x.ipynb"
    response = lab.get("/tree", follow_redirects=False)
    assert response.headers["location"] == "/lab/tree"


def test_page_needs_login_static_does_not(lab_server: Served) -> None:
    with httpx.Client(base_url=lab_server.url, timeout=60) as anon:
        response = anon.get("/lab/tree/x.ipynb", headers={"accept": "text/html"})
        assert response.status_code == 302
        assert response.headers["location"].startswith("/login?next=")
        # lab declares /lab/api/ an API path: a browser is refused there, not sent to log in.
        assert anon.get("/lab/api/settings", headers={"accept": "text/html"}).status_code == 403
        static = anon.get(f"/static/lab/{MAIN_JS}")
        assert static.status_code == 200 and static.headers["content-type"].startswith("text/javascript")
        assert anon.get("/static/favicons/favicon.ico").status_code == 200
        assert anon.get("/static/favicons/favicon-busy-1.ico").status_code == 200


def _check_prefixed(client: httpx.Client, prefix: str) -> None:
    response = client.get(prefix + "lab", params={"token": TOKEN})
    assert response.status_code == 200
    config = page_config(response.text)
    assert config["baseUrl"] == prefix
    assert config["fullStaticUrl"] == prefix + "static/lab"
    assert config["fullSettingsUrl"] == prefix + "lab/api/settings"
    assert config["fullLabextensionsUrl"] == prefix + "lab/extensions"
    assert config["settingsUrl"] == "/lab/api/settings"  # the short forms stay relative to the base
    assert f'src="{prefix}static/lab/{MAIN_JS}' in response.text
    assert f'href="{prefix}static/favicons/favicon.ico"' in response.text
    cookie = [h for h in response.headers.get_list("set-cookie") if h.startswith("_xsrf=")][0]
    assert f"Path={prefix}" in cookie
    asset = client.get(f"{prefix}static/lab/{MAIN_JS}")
    assert asset.status_code == 200 and len(asset.content) > 1000
    theme = client.get(prefix + "lab/api/themes/@jupyterlab/theme-light-extension/index.css")
    assert theme.status_code == 200
    settings = client.get(prefix + "lab/api/settings", params={"ids_only": "true"},
                          headers={"Authorization": f"token {TOKEN}"})
    assert settings.status_code == 200 and settings.json()["settings"]
    home = client.get(prefix, headers={"Authorization": f"token {TOKEN}"}, follow_redirects=False)
    assert home.status_code == 302 and home.headers["location"] == prefix + "lab"
    assert client.get(f"/static/lab/{MAIN_JS}").status_code == 404  # nothing outside the prefix


def test_base_url(root: Path) -> None:
    app = create_app(str(root), token=TOKEN, extensions=["lab"], base_url="/user/me/")
    with serve(app) as running, httpx.Client(base_url=running.url, timeout=60) as client:
        _check_prefixed(client, "/user/me/")


def test_mounted_under_a_prefix(root: Path) -> None:
    carme_app = create_app(str(root), token=TOKEN, extensions=["lab"])
    host = Starlette(routes=[Mount("/embedded", app=carme_app)], lifespan=carme_app.lifespan)
    with serve(host) as running, httpx.Client(base_url=running.url, timeout=60) as client:
        _check_prefixed(client, "/embedded/")


def test_mounted_with_base_url(root: Path) -> None:
    carme_app = create_app(str(root), token=TOKEN, extensions=["lab"], base_url="/inner")
    host = Starlette(routes=[Mount("/outer", app=carme_app)], lifespan=carme_app.lifespan)
    with serve(host) as running, httpx.Client(base_url=running.url, timeout=60) as client:
        _check_prefixed(client, "/outer/inner/")


class PageConfigPlugin:
    """Adds to the page config: once synchronously, once from a coroutine."""

    @hookimpl
    def carme_lab_extra_page_config(self, server: Server, request: Request, page_config: dict[str, Any]) -> dict[str, Any]:
        return {"terminalsAvailable": True, "seenPath": request.url.path, "seenTree": page_config["treePath"]}


class AsyncPageConfigPlugin:
    @hookimpl
    async def carme_lab_extra_page_config(self, page_config: dict[str, Any]) -> dict[str, Any]:
        # Registered later, so it sees (and may override) the first plugin's additions.
        return {"fromAsync": page_config["seenPath"], "seenTree": "overridden"}


class SilentPlugin:
    @hookimpl
    def carme_lab_extra_page_config(self) -> None:
        return None


def test_hook_carme_lab_extra_page_config(root: Path) -> None:
    app = create_app(str(root), token=TOKEN, extensions=["lab"],
                     plugins=[PageConfigPlugin(), AsyncPageConfigPlugin(), SilentPlugin()])
    with serve(app) as running, httpx.Client(base_url=running.url, timeout=60) as client:
        config = page_config(client.get("/lab/tree/a.ipynb", params={"token": TOKEN}).text)
    assert config["terminalsAvailable"] is True
    assert config["seenPath"] == "/lab/tree/a.ipynb"
    assert config["fromAsync"] == "/lab/tree/a.ipynb"
    assert config["seenTree"] == "overridden"
    assert config["appName"] == "JupyterLab"


def test_page_config_setting(root: Path) -> None:
    app = create_app(str(root), token=TOKEN, extensions=["lab"],
                     settings={"lab.page_config": {"exposeAppInBrowser": True}, "lab.disabled_extensions": ["@x/y"]})
    with serve(app) as running, httpx.Client(base_url=running.url, timeout=60) as client:
        config = page_config(client.get("/lab", params={"token": TOKEN}).text)
    assert config["exposeAppInBrowser"] is True
    assert "@x/y" in config["disabledExtensions"]


def test_lab_disabled_serves_no_page(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=60) as client:
        assert client.get("/lab", params={"token": TOKEN}).status_code == 404
        assert client.get(f"/static/lab/{MAIN_JS}").status_code in (403, 404)


def test_static_text_assets_go_out_gzipped_and_cached_for_a_year(lab_server: Served) -> None:
    from carme_lab.paths import find_app_dir

    on_disk = (find_app_dir() / "static" / MAIN_JS).read_bytes()
    with httpx.Client(base_url=lab_server.url, timeout=60) as anon:
        zipped = anon.get(f"/static/lab/{MAIN_JS}", headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
        assert int(zipped.headers["content-length"]) < len(on_disk) / 2
        assert zipped.content == on_disk  # decoded by httpx
        assert zipped.headers["cache-control"] == "public, max-age=31536000, immutable"  # a hashed name
        assert zipped.headers["content-type"].startswith("text/javascript")
        again = anon.get(f"/static/lab/{MAIN_JS}", headers={"accept-encoding": "gzip"})
        assert again.content == on_disk and again.headers["etag"] == zipped.headers["etag"]
        plain = anon.get(f"/static/lab/{MAIN_JS}", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == on_disk
        assert zipped.headers["etag"] == "W/" + plain.headers["etag"]
