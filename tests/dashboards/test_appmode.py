"""App mode: `carme dashboard NOTEBOOK|FOLDER` serves the dashboards and nothing else; files next
to the notebook only through the allow/deny lists; templates from user folders."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import httpx
import nbformat

from tests.dashboards.site import SENTINEL, cells, dashboards, http, write_notebook
from tests.processes import Process
from tests.serving import TOKEN

CORE_PATHS = ["lab", "api/contents", "api/contents/nb.ipynb", "api/kernels", "api/sessions", "api/kernelspecs",
              "api/status", "files/nb.ipynb", "api/events/subscribe", "terminals"]


def test_one_notebook_app_serves_only_its_dashboard(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('app', 1 + 1)")
    write_notebook(root / "other.ipynb", "print('other')")
    (root / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with dashboards(root, app_mode=True, notebook="nb.ipynb") as served, http(served) as client:
        html = client.get("").text
        assert "app 2" in cells(html)[0] and SENTINEL not in html
        for path in CORE_PATHS:  # (GETs of other paths are taken for files next to the notebook)
            assert client.get(path, follow_redirects=True).status_code == 404, path
        assert client.put("api/contents/new.txt", json={"type": "file", "format": "text", "content": "x"}
                          ).status_code == 404
        assert not (root / "new.txt").exists()
        assert client.post("api/kernels", json={}).status_code == 404
        assert client.get("dashboards/render/other.ipynb").status_code == 404
        assert client.get("dashboards/tree").status_code == 404
        assert client.get("pic.png", follow_redirects=False).headers["location"] == "/dashboards/files/pic.png"
        assert client.get("pic.png", follow_redirects=True).content == b"\x89PNG\r\n\x1a\n"
        # redirected to files, where notebooks never are
        assert client.get("nb.ipynb", follow_redirects=True).status_code == 404


def test_folder_app_lists_and_renders_its_notebooks(root: Path) -> None:
    write_notebook(root / "sub" / "a.ipynb", "print('in sub')")
    with dashboards(root, app_mode=True) as served, http(served) as client:
        tree = client.get("").text
        assert 'href="/dashboards/tree/sub"' in tree
        assert 'href="/dashboards/render/sub/a.ipynb"' in client.get("dashboards/tree/sub").text
        assert "in sub" in client.get("dashboards/render/sub/a.ipynb").text
        for path in CORE_PATHS:
            assert client.get(path).status_code == 404, path
        assert client.get("whatever.png").status_code == 404  # no redirect to files in folder mode


def test_files_go_through_the_allow_and_deny_lists(root: Path) -> None:
    for name in ("a.png", "b.PNG", "c.csv", "d.py", "secret.txt", "sub/e.svg"):
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(name)
    write_notebook(root / "nb.ipynb", "1")
    (root.parent / "outside.png").write_text("outside")
    (root / "link.png").symlink_to(root.parent / "outside.png")
    with dashboards(root, file_allowlist=[r".*\.(png|svg|csv|py|ipynb)"], file_denylist=[r".*\.py"]) as served, \
            http(served) as client:
        for name in ("a.png", "b.PNG", "c.csv", "sub/e.svg"):
            response = client.get(f"dashboards/files/{name}")
            assert response.status_code == 200 and response.text == name, name
            assert "sandbox" in response.headers["content-security-policy"]
        for name in ("d.py", "secret.txt", "nb.ipynb", "link.png", "..%2Foutside.png", "missing.png"):
            assert client.get(f"dashboards/files/{name}").status_code == 404, name


def test_a_user_template_extends_the_default(root: Path, tmp_path: Path) -> None:
    mine = tmp_path / "templates" / "mine"
    (mine / "static").mkdir(parents=True)
    (mine / "conf.json").write_text(json.dumps({"base_template": "lab", "settings": {"theme": "dark"},
                                                "resources": {"motto": "Made with care"}}))
    (mine / "page.html").write_text(  # as the README's example: a cell tagged "hide" is left out
        '{% extends "lab/page.html" %}\n'
        '{% block cell %}{% if "hide" not in event.tags %}<div class="mine">{{ super() }}</div>{% endif %}'
        '{% endblock %}\n'
        '{% block footer %}<footer>{{ resources.motto }}</footer>{% endblock %}\n')
    (mine / "static" / "mine.css").write_text("body { color: red; }")
    notebook = write_notebook(root / "nb.ipynb", "print('templated')", "print('hidden one')")
    nb = nbformat.read(notebook, 4)
    nb.cells[1].metadata["tags"] = ["hide"]
    nbformat.write(nb, notebook)
    with dashboards(root, template="mine", template_paths=[str(tmp_path / "templates")]) as served, \
            http(served) as client:
        html = client.get("dashboards/render/nb.ipynb").text
        assert re.search(r'<div class="mine">\s*<section class="carme-cell carme-cell-code" data-cell-index="0">', html)
        assert "templated" in html and "hidden one" not in html
        assert '<html lang="en" data-theme="dark">' in html  # the template's settings ...
        assert "<footer>Made with care</footer>" in html
        assert client.get("dashboards/templates/mine/static/mine.css").text == "body { color: red; }"
        assert client.get("dashboards/templates/mine/static/lab.css").status_code == 200  # from its base
        assert client.get("dashboards/templates/mine/static/..%2Fconf.json").status_code == 404
    with dashboards(root, template="mine", template_paths=[str(tmp_path / "templates")], theme="light") as served, \
            http(served) as client:
        assert 'data-theme="light"' in client.get("dashboards/render/nb.ipynb").text  # ... unless set explicitly


def test_carme_dashboard_command(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('from the command')")
    process = Process([sys.executable, "-m", "carme.cli", "dashboard", str(root / "nb.ipynb"), "--port", "0",
                       "--no-browser", "--token", TOKEN], root)
    try:
        url = process.url()
        assert url.endswith(f"/?token={TOKEN}")
        base = url.split("/?")[0]
        with httpx.Client(base_url=base, timeout=60) as client:
            assert "from the command" in client.get(f"/?token={TOKEN}").text
            assert client.get("/api/kernels", follow_redirects=True).status_code == 404  # logged in; still nothing
            assert client.get("/lab", follow_redirects=True).status_code == 404
        process.proc.send_signal(signal.SIGINT)
        assert process.wait() == 0
    finally:
        process.stop()
    missing = Process([sys.executable, "-m", "carme.cli", "dashboard", str(root / "nope.ipynb")], root)
    assert missing.wait() == 2
    assert "no such notebook or folder" in "".join(missing.log)
