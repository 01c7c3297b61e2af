"""Another template or theme for one page, as Voila allows: ``?voila-template=`` and
``?voila-theme=`` from the visitor, ``metadata.voila.template|theme`` from the notebook, each as
far as ``allow_template_override`` / ``allow_theme_override`` (YES, NOTEBOOK, NO) allow. A
visitor's pick changes the look only: never whether sources or tracebacks are shown."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import nbformat
import pytest

from tests.dashboards.site import CONFIG, SENTINEL, cells, dashboards, http, write_notebook

MARK = "PICKED-TEMPLATE-MARK"


def picked_template(folder: Path) -> Path:
    """A template ``picked`` extending lab, that marks its pages and would show sources."""
    picked = folder / "picked"
    picked.mkdir(parents=True)
    (picked / "conf.json").write_text(json.dumps({"base_template": "lab", "settings": {"strip_sources": False}}))
    (picked / "page.html").write_text('{% extends "lab/page.html" %}{% block footer %}<footer>'
                                      + MARK + "</footer>{% endblock %}")
    return folder


def notebook_with(path: Path, **voila: str) -> Path:
    write_notebook(path, "print('ran')")
    if voila:
        nb = nbformat.read(path, as_version=4)
        nb.metadata["voila"] = voila
        nbformat.write(nb, path)
    return path


def theme_of(html: str) -> str:
    match = CONFIG.search(html)
    assert match is not None
    return str(json.loads(match.group(1))["theme"])


def test_a_visitor_picks_the_template_and_theme_but_not_what_the_page_reveals(root: Path, tmp_path: Path) -> None:
    notebook_with(root / "nb.ipynb")
    with dashboards(root, template_paths=[str(picked_template(tmp_path / "templates"))]) as served, \
            http(served) as client:
        plain = client.get("dashboards/render/nb.ipynb").text
        assert MARK not in plain and theme_of(plain) == "light"
        picked = client.get("dashboards/render/nb.ipynb?voila-template=picked&voila-theme=dark").text
        assert MARK in picked and theme_of(picked) == "dark" and "ran" in cells(picked)[0]
        assert SENTINEL not in picked  # the template's strip_sources=false is not the visitor's to use
        voila_name = client.get("dashboards/render/nb.ipynb?voila-theme=JupyterLab%20Dark").text
        assert theme_of(voila_name) == "dark"


def test_the_notebook_picks_its_template_with_its_settings(root: Path, tmp_path: Path) -> None:
    notebook_with(root / "nb.ipynb", template="picked", theme="dark")
    with dashboards(root, template_paths=[str(picked_template(tmp_path / "templates"))],
                    allow_template_override="NOTEBOOK", allow_theme_override="NOTEBOOK") as served, \
            http(served) as client:
        html = client.get("dashboards/render/nb.ipynb?voila-template=lab&voila-theme=light").text
        assert MARK in html and theme_of(html) == "dark"  # the query is not allowed to, the notebook is
        assert SENTINEL in html  # the notebook's author chose a template that shows sources


def test_no_overrides_when_the_settings_say_no(root: Path, tmp_path: Path) -> None:
    notebook_with(root / "nb.ipynb", template="picked", theme="dark")
    with dashboards(root, template_paths=[str(picked_template(tmp_path / "templates"))],
                    allow_template_override="NO", allow_theme_override="NO") as served, http(served) as client:
        html = client.get("dashboards/render/nb.ipynb?voila-template=picked&voila-theme=dark").text
        assert MARK not in html and theme_of(html) == "light" and SENTINEL not in html


def test_an_unknown_template_or_theme_is_a_bad_request(root: Path, tmp_path: Path) -> None:
    notebook_with(root / "nb.ipynb")
    with dashboards(root) as served, http(served) as client:
        response = client.get("dashboards/render/nb.ipynb?voila-template=nope")
        assert response.status_code == 400 and "unknown template &#39;nope&#39;" in response.text
        assert str(tmp_path) not in response.text  # no server folder named to a visitor
        response = client.get("dashboards/render/nb.ipynb?voila-template=" + "x" * 5000)  # no file name that long
        assert response.status_code == 400 and "unknown template" in response.text
        assert client.get("dashboards/templates/lab/static/" + "x" * 5000).status_code == 404
        assert client.get("dashboards/templates/" + "x" * 5000 + "/static/a.css").status_code == 404
        for bad in ("../lab", "blue"):
            response = client.get(f"dashboards/render/nb.ipynb?voila-template=lab&voila-theme={bad}")
            assert response.status_code == 400 and "unknown theme" in response.text
        assert served.app.server.kernels.list() == []  # nothing started for a bad request


def test_a_broken_template_a_visitor_picks_is_a_500_naming_it_and_what_is_wrong(
        root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notebook_with(root / "nb.ipynb")
    folder = tmp_path / "templates"
    for name, conf, page in [("syntax", {"base_template": "lab"}, "{% extends 'lab/page.html' %}{% block footer %"),
                             ("badconf", "{not json", None),
                             ("orphan", {"base_template": "gone"}, None)]:
        (folder / name).mkdir(parents=True)
        (folder / name / "conf.json").write_text(conf if isinstance(conf, str) else json.dumps(conf))
        if page is not None:
            (folder / name / "page.html").write_text(page)
    with dashboards(root, template_paths=[str(folder)]) as served, http(served) as client:
        for name, problem in [("syntax", "page.html, line 1: "), ("badconf", "conf.json: cannot read"),
                              ("orphan", "base_template 'gone' is not installed")]:
            with caplog.at_level(logging.ERROR, "carme.dashboards"):
                page = client.get(f"dashboards/render/nb.ipynb?voila-template={name}")
            assert page.status_code == 500, page.text
            text = html.unescape(page.text)
            assert f"The dashboard template {name!r} is broken: " in text and problem in text, text
            assert "Traceback" not in text
            assert str(folder) not in text  # where the server keeps it is the log's to say
            logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert any(str(folder / name) in m and problem in m for m in logged), logged
        # One that is not installed is still the visitor's mistake.
        unknown = client.get("dashboards/render/nb.ipynb?voila-template=nowhere")
        assert unknown.status_code == 400 and "unknown template" in unknown.text
