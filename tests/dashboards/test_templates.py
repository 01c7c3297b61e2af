"""Template folders: the search path, conf.json chains and their errors, static files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carme.config import ConfigError
from carme_dashboards.settings import RenderOptions
from carme_dashboards.templates import BrokenTemplate, Templates, search_path


def template(root: Path, name: str, conf: object | None = None, files: dict[str, str] | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    if conf is not None:
        (folder / "conf.json").write_text(conf if isinstance(conf, str) else json.dumps(conf))
    for relative, text in (files or {}).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def test_user_folders_come_first_and_chains_end_at_base(tmp_path: Path) -> None:
    template(tmp_path, "lab", {"base_template": "base"}, {"page.html": "mine"})  # shadows the built-in lab
    template(tmp_path, "child", {"base_template": "lab"})
    templates = Templates(search_path([tmp_path]))
    assert [t.name for t in templates.chain("child")] == ["child", "lab", "base"]
    assert templates.chain("child")[1].path == tmp_path / "lab"
    assert {"base", "lab", "child"} <= set(templates.available())


def test_errors_name_what_is_wrong(tmp_path: Path) -> None:
    template(tmp_path, "a", {"base_template": "b"})
    template(tmp_path, "b", {"base_template": "a"})
    template(tmp_path, "broken", "{nope")
    template(tmp_path, "typed", {"settings": ["theme"]})
    templates = Templates(search_path([tmp_path]))
    with pytest.raises(BrokenTemplate, match="loops: a -> b -> a"):
        templates.chain("a")
    with pytest.raises(ConfigError, match="no template 'missing'.*found: .*lab"):
        templates.find("missing")
    with pytest.raises(BrokenTemplate, match=r"template 'broken' \(.*broken\) is broken: conf.json: cannot read"):
        templates.find("broken")
    with pytest.raises(BrokenTemplate, match="settings must be a JSON object"):
        templates.find("typed")
    with pytest.raises(ConfigError, match="not a template name"):
        templates.find("../lab")
    with pytest.raises(ConfigError, match="no template 'xxx"):
        templates.find("x" * 5000)  # longer than a file name may be


def test_template_settings_fill_in_only_what_nobody_set() -> None:
    options = RenderOptions(theme="light", strip_sources=True)
    changed = options.with_template_settings({"theme": "dark", "strip_sources": False}, {"theme"}, "conf.json")
    assert changed.theme == "light" and changed.strip_sources is False
    with pytest.raises(ConfigError, match="settings.max_kernels cannot be set by a template"):
        options.with_template_settings({"max_kernels": 3}, set(), "conf.json")
    with pytest.raises(ConfigError, match="settings.theme = 'blue' is not valid"):
        options.with_template_settings({"theme": "blue"}, set(), "conf.json")


def test_static_files_stay_inside_static_folders(tmp_path: Path) -> None:
    template(tmp_path, "mine", {"base_template": "lab"}, {"static/a.css": "a", "secret.txt": "s"})
    templates = Templates(search_path([tmp_path]))
    assert templates.static_file("mine", "a.css") == (tmp_path / "mine" / "static" / "a.css").resolve()
    assert templates.static_file("mine", "lab.css") is not None  # from the base
    for bad in ("../secret.txt", "../conf.json", "", ".hidden", "a.css/../../secret.txt", "x" * 5000):
        assert templates.static_file("mine", bad) is None, bad
    assert templates.static_file("missing", "a.css") is None
