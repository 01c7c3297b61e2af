"""Dashboard pages over HTTP: the stream (shell before the kernel, each cell as it finishes),
sources kept out, errors shown where they happened, the request in the kernel's environment, the
tree page, error pages. Real ipykernel kernels, real uvicorn; gates instead of timing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from carme import create_app, hookimpl
from tests.dashboards.site import (SENTINEL, cells, dashboards, gate_code, held_kernelspec, http, kernel_ids, page,
                                   write_notebook)
from tests.serving import TOKEN, serve


def test_shell_arrives_before_the_kernel_and_cells_as_they_finish(root: Path, jupyter_env: Path) -> None:
    kernel_gate, cell_gate = root.parent / "kernel-go", root.parent / "cell-go"
    held_kernelspec(jupyter_env / "data", "held", kernel_gate)
    write_notebook(root / "nb.ipynb", ("markdown", "# Title"), "print('first', 6 * 7)", gate_code(cell_gate),
                   "print('last')", kernel="held")
    with dashboards(root) as served, http(served) as client, page(client, "dashboards/render/nb.ipynb") as p:
        assert p.response.status_code == 200
        assert p.response.headers["cache-control"].startswith("no-cache")
        config = p.config()  # the head, with its page config, while the kernel cannot have started
        assert config["kernelId"] in served.app.server.services["dashboards"].visits.by_kernel
        assert config["kernelId"] not in served.app.server.kernels
        assert config["kernelApiUrl"] == "dashboards/api/" and config["baseUrl"] == "/"
        assert '<script src="/dashboards/static/client/dashboard.js" async>' in p.text
        assert "<section" not in p.text
        kernel_gate.touch()
        p.until(lambda text: 'data-done="2" data-total="4"' in text)  # two cells done ...
        assert "first 42" in cells(p.text)[1] and 2 not in cells(p.text)  # ... the gated one still running
        cell_gate.touch()
        html = p.finish()
    assert ">Title</h1>" in cells(html)[0]
    assert "last" in cells(html)[3]
    assert '<div id="carme-finished" data-status="ok">' in html
    assert SENTINEL not in html


def test_sources_shown_only_when_not_stripped(root: Path) -> None:
    write_notebook(root / "sub" / "nb.ipynb", "x = 1",
                   ("markdown", "[next](../next.ipynb#top) and ![chart](img/chart.png) and [web](https://example.org)"))
    with dashboards(root, strip_sources=False) as served, http(served) as client:
        html = client.get("dashboards/render/sub/nb.ipynb").text
    assert SENTINEL in cells(html)[0] and 'class="carme-source"' in html
    links = cells(html)[1]  # relative links of markdown go where they are served
    assert 'href="/dashboards/render/next.ipynb#top"' in links
    assert 'src="/dashboards/files/sub/img/chart.png"' in links and 'href="https://example.org"' in links


def test_a_failed_cell_stops_the_run_and_shows_where(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('before')", "raise ValueError('secret detail')", "print('after')")
    with dashboards(root) as served, http(served) as client:
        html = client.get("dashboards/render/nb.ipynb").text
    found = cells(html)
    assert set(found) == {0, 1}  # the cell after the failure did not run
    assert 'class="carme-cell carme-cell-code carme-cell-error" data-cell-index="1"' in html
    assert "secret detail" not in html and "Traceback" not in html and SENTINEL not in html
    assert 'data-status="error" data-failed-cell="1"' in html


def test_tracebacks_and_allowed_errors(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "raise ValueError('shown detail')", "print('after')")
    with dashboards(root, show_tracebacks=True, allow_errors=True) as served, http(served) as client:
        html = client.get("dashboards/render/nb.ipynb").text
    assert "shown detail" in cells(html)[0]
    assert "after" in cells(html)[1]
    assert '<div id="carme-finished" data-status="ok">' in html


def test_cell_timeout_interrupts_and_says_so(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "import time; time.sleep(600)", "print('never')")
    with dashboards(root, cell_timeout=1.0) as served, http(served) as client:
        html = client.get("dashboards/render/nb.ipynb").text
    assert 'data-error="timeout"' in html and set(cells(html)) == {0}
    assert 'data-status="timeout"' in html


def test_the_request_is_in_the_kernel_environment(root: Path) -> None:
    names = ["QUERY_STRING", "SCRIPT_NAME", "PATH_INFO", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
             "HTTP_ACCEPT_LANGUAGE"]
    write_notebook(root / "sub" / "nb.ipynb", "import os; print(os.getcwd())",
                   f"for n in {names!r}: print(n, '=', os.environ.get(n, '<unset>'))")
    with dashboards(root, http_header_envs=["Accept-Language"]) as served, http(served) as client:
        html = client.get("dashboards/render/sub/nb.ipynb?city=Paris&n=2",
                          headers={"Accept-Language": "fr-CH"}).text
    assert str((root / "sub").resolve()) in cells(html)[0]
    env = cells(html)[1]
    assert "QUERY_STRING = city=Paris&amp;n=2" in env
    assert "SCRIPT_NAME = /dashboards/render/sub/nb.ipynb" in env
    assert "PATH_INFO = \n" in env
    assert "SERVER_NAME = 127.0.0.1" in env and f"SERVER_PORT = {served.port}" in env
    assert "SERVER_PROTOCOL = HTTP/1.1" in env and "HTTP_ACCEPT_LANGUAGE = fr-CH" in env


def test_missing_broken_and_other_files(root: Path) -> None:
    (root / "broken.ipynb").write_text("{not json")
    (root / "folder").mkdir()
    (root / "pic.png").write_bytes(b"\x89PNG\r\n")
    with dashboards(root) as served, http(served) as client:
        missing = client.get("dashboards/render/nope.ipynb")
        assert missing.status_code == 404 and 'data-status="404"' in missing.text
        broken = client.get("dashboards/render/broken.ipynb")
        assert broken.status_code == 400 and "broken.ipynb" in broken.text
        outside = client.get("dashboards/render/%2E%2E/x.ipynb")
        assert outside.status_code == 404
        folder = client.get("dashboards/render/folder", follow_redirects=False)
        assert folder.headers["location"] == "/dashboards/tree/folder"
        image = client.get("dashboards/render/pic.png", follow_redirects=False)
        assert image.headers["location"] == "/dashboards/files/pic.png"


def test_tree_lists_folders_and_notebooks_only(root: Path) -> None:
    write_notebook(root / "b.ipynb", "1")
    write_notebook(root / "sub" / "a.ipynb", "1")
    write_notebook(root / ".hidden" / "h.ipynb", "1")
    (root / "data.csv").write_text("x\n")
    with dashboards(root) as served, http(served) as client:
        top = client.get("dashboards/").text
        assert 'href="/dashboards/tree/sub"' in top and 'href="/dashboards/render/b.ipynb"' in top
        assert "data.csv" not in top and ".hidden" not in top
        sub = client.get("dashboards/tree/sub").text
        assert 'href="/dashboards/render/sub/a.ipynb"' in sub
        assert client.get("dashboards/tree/nope").status_code == 404
        assert client.get("dashboards/tree/.hidden").status_code == 404


def test_under_a_base_url(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('based')")
    with dashboards(root, base_url="/user/me/") as served, http(served, "/user/me/") as client:
        response = client.get("dashboards/render/nb.ipynb")
        assert "based" in response.text
        assert '"baseUrl":"/user/me/"' in response.text
        assert 'href="/user/me/dashboards/templates/lab/static/lab.css"' in response.text
        assert response.cookies  # the visit cookie, for this base URL's path
        assert client.get("dashboards/templates/lab/static/lab.css").status_code == 200


def test_authentication_applies_but_assets_are_public(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "1")
    with dashboards(root) as served, http(served) as client:
        anonymous = client.get("dashboards/render/nb.ipynb", headers={"Authorization": "", "Accept": "text/html"},
                               follow_redirects=False)
        assert anonymous.status_code == 302 and "/login?next=" in anonymous.headers["location"]
        for url in ("dashboards/templates/lab/static/base.css", "dashboards/templates/base/static/base.css"):
            assert client.get(url, headers={"Authorization": ""}).status_code == 200
        assert client.get("dashboards/api/kernels/x", headers={"Authorization": "", "Accept": "text/html"}
                          ).status_code == 403


class Viewer:
    """A product's rule: dashboards may be opened, kernels not run, and nothing under private/."""

    name = "viewer"

    @hookimpl
    def carme_permission(self, server: Any, user: Any, action: str, resource: str, path: str | None) -> bool | None:
        if resource == "kernels" and action == "execute":
            return False
        return False if path is not None and path.startswith("private") else None


def test_permissions_are_checked_per_dashboard(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('allowed')")
    write_notebook(root / "private" / "nb.ipynb", "print('secret')")
    app = create_app(str(root), token=TOKEN, extensions=["dashboards"], config_files=False, plugins=[Viewer()])
    with serve(app) as served, http(served) as client:
        assert "allowed" in client.get("dashboards/render/nb.ipynb").text  # no execute on kernels needed
        denied = client.get("dashboards/render/private/nb.ipynb")
        assert denied.status_code == 403 and denied.json()["resource"] == "contents"
        assert client.get("dashboards/tree/private").status_code == 403
        assert len(kernel_ids(served)) == 1  # the denied page started no kernel
