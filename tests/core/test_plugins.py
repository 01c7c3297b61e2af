"""The plugin machinery itself: every hook call traced, hook wrappers refused, a missing built-in
plugin fatal. (The hooks one by one are in test_hooks.py.)"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute

from carme import create_app, hookimpl
from carme.auth import User
from carme.cli import main
from carme.config import Setting
from carme.plugins import PluginError
from carme.server import Server
from tests.installing import Site
from tests.polling import wait_until
from tests.serving import AUTH, TOKEN, serve
from tests.watch.conftest import wait_watching


class Traced:
    """Implements a hook of each kind: loading, lifecycle, firstresult, notification."""

    name = "traced"

    @hookimpl
    def carme_register_settings(self) -> list[Setting]:
        return [Setting("colour", str, "blue", "A colour")]

    @hookimpl
    def carme_register_routes(self, server: Server) -> list[BaseRoute]:
        return []

    @hookimpl
    async def carme_startup(self, server: Server) -> None:
        pass

    @hookimpl
    def carme_shutdown(self, server: Server) -> None:
        pass

    @hookimpl
    def carme_user_from_connection(self, server: Server, connection: HTTPConnection) -> User | None:
        return None

    @hookimpl
    def carme_contents_manager(self, server: Server) -> None:
        return None

    @hookimpl
    def carme_before_save(self, server: Server, path: str, model: dict[str, Any]) -> None:
        pass

    @hookimpl
    async def carme_on_contents_changed(self, server: Server, action: str, path: str, source_path: str | None) -> None:
        pass


@pytest.fixture
def hook_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="carme.hooks"):
        yield caplog


def traced_calls(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "carme.hooks"]


def test_trace_logs_every_hook_call_with_the_plugins_called(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                            hook_log: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CARME_TRACE_HOOKS", "1")
    app = create_app(str(root), token=TOKEN, plugins=[Traced()], extensions=[])
    with serve(app) as served:
        saved = httpx.put(served.url + "/api/contents/a.txt", headers=AUTH,
                          json={"type": "file", "format": "text", "content": "x" * 500})
        assert saved.status_code == 201
    calls = traced_calls(hook_log)
    for hook in ("carme_register_settings", "carme_register_routes", "carme_startup", "carme_shutdown",
                 "carme_user_from_connection", "carme_before_save", "carme_on_contents_changed"):
        assert any(line.startswith(f"{hook}(") and line.endswith("traced") for line in calls), hook
    # A firstresult hook is one call to every implementation, the built-in answering last.
    assert any(line.startswith("carme_contents_manager(") and line.endswith("-> traced, carme.builtins.contents")
               for line in calls)
    # Arguments are cut short: the 500-character content is not logged whole.
    assert all("x" * 100 not in line for line in calls)
    assert any(line.startswith("carme_startup returned") for line in calls)


def test_no_trace_unless_asked(root: Path, monkeypatch: pytest.MonkeyPatch, hook_log: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("CARME_TRACE_HOOKS", raising=False)
    create_app(str(root), token=TOKEN, plugins=[Traced()], extensions=[])
    assert traced_calls(hook_log) == []


class AsyncAuth:
    def __init__(self, name: str, answer: str | None) -> None:
        self.name = name
        self.answer = answer

    @hookimpl
    async def carme_user_from_connection(self, server: Server, connection: HTTPConnection) -> User | None:
        return User(self.answer) if self.answer else None


def test_an_async_answer_of_none_lets_the_next_plugin_answer(root: Path) -> None:
    # Asked last registered first: "abstains" resolves to None, so "knows" decides.
    app = create_app(str(root), token=TOKEN, plugins=[AsyncAuth("knows", "ada"), AsyncAuth("abstains", None)],
                     extensions=[])
    with serve(app) as served:
        assert httpx.get(served.url + "/api/me").json()["identity"]["username"] == "ada"


class Wraps:
    name = "wraps"

    @hookimpl(wrapper=True)
    def carme_register_routes(self, server: Server) -> Iterator[None]:
        return (yield)


class OldStyleWraps:
    name = "old-style"

    @hookimpl(hookwrapper=True)
    def carme_startup(self, server: Server) -> Iterator[None]:
        yield


@pytest.mark.parametrize("plugin", [Wraps(), OldStyleWraps()], ids=["wrapper", "hookwrapper"])
def test_hook_wrappers_are_refused_naming_plugin_and_hook(root: Path, plugin: object) -> None:
    hook = "carme_register_routes" if isinstance(plugin, Wraps) else "carme_startup"
    with pytest.raises(PluginError) as raised:
        create_app(str(root), plugins=[plugin], extensions=[])
    assert str(raised.value).startswith(f"plugin {plugin.name!r}: {hook} is a hook wrapper")  # type: ignore[attr-defined]


WRAPPING_EXTENSION = """
from carme import hookimpl

@hookimpl(wrapper=True)
def carme_startup(server):
    return (yield)
"""


def test_extension_with_a_wrapper_is_broken_and_the_others_run(site_dir: Site, root: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    site_dir.install("wrapping", WRAPPING_EXTENSION)
    app = create_app(str(root))
    assert not app.server.plugins.pm.has_plugin("wrapping")
    error = app.server.plugins.extensions["wrapping"].error
    assert error is not None and "carme_startup is a hook wrapper" in error
    assert main(["extension", "list"]) == 0
    assert "ERROR PluginError: plugin 'wrapping': carme_startup is a hook wrapper" in capsys.readouterr().out


def test_a_builtin_plugin_that_cannot_be_imported_stops_start_up(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # As if core/builtins/kernels.py had been renamed: carme must not start without kernels.
    monkeypatch.setitem(sys.modules, "carme.builtins.kernels", None)
    with pytest.raises(PluginError, match="built-in plugin 'carme.builtins.kernels' cannot be imported"):
        create_app(str(root))
    assert main(["serve", str(root)]) == 3
    assert "built-in plugin 'carme.builtins.kernels' cannot be imported" in capsys.readouterr().err


FILES_CHANGED = """
from carme import hookimpl

@hookimpl
def carme_watch_on_files_changed(server, changes):
    server.services.setdefault("seen", []).extend(changes)

@hookimpl
def carme_absent_on_thing_done(server):
    pass
"""


@pytest.mark.parametrize("extensions", [{"watch": False}, {"watch": True}], ids=["watch-disabled", "watch-enabled"])
def test_hook_of_another_extension_needs_no_optionalhook(site_dir: Site, root: Path,
                                                         extensions: dict[str, bool]) -> None:
    # Implements watch's hook plainly (and one of an extension that is not even installed): it
    # loads whether watch is enabled or not, and is called when it is.
    site_dir.install("follower", FILES_CHANGED)
    app = create_app(str(root), token=TOKEN, extensions={"follower": True, **extensions})
    assert app.server.plugins.extensions["follower"].error is None
    assert app.server.plugins.pm.has_plugin("follower")
    if extensions["watch"]:
        with serve(app) as served:
            wait_watching(served)
            (root / "new.txt").write_text("x")
            wait_until(lambda: any(c.path == "new.txt" for c in app.server.services.get("seen", [])),
                       "the follower to be told of new.txt")


TYPOS = {
    "core": "def carme_register_rotues(server):\n    return []",
    "enabled extension": "def carme_watch_on_file_changed(server, changes):\n    pass",
}


@pytest.mark.parametrize("typo", sorted(TYPOS))
def test_a_misspelt_hook_marks_the_extension_broken(site_dir: Site, root: Path, typo: str) -> None:
    site_dir.install("typo", "from carme import hookimpl\n\n@hookimpl\n" + TYPOS[typo])
    app = create_app(str(root), extensions=["typo", "watch"])
    assert not app.server.plugins.pm.has_plugin("typo")
    assert "implements unknown hook" in (app.server.plugins.extensions["typo"].error or "")


class OldName:
    name = "old-name"

    @hookimpl
    def carme_authenticate(self, server: Server, connection: HTTPConnection) -> User | None:
        return None


def test_an_old_hook_name_says_the_new_one(root: Path, site_dir: Site) -> None:
    with pytest.raises(PluginError, match="plugin 'old-name' implements 'carme_authenticate', which is now named "
                                          "carme_user_from_connection"):
        create_app(str(root), plugins=[OldName()], extensions=[])
    site_dir.install("old", "from carme import hookimpl\n\n@hookimpl\ndef carme_pre_save(server, path, model):\n    pass\n")
    app = create_app(str(root), extensions=["old"])
    assert app.server.plugins.extensions["old"].error == "implements 'carme_pre_save', which is now named carme_before_save"
    with pytest.raises(PluginError, match="no hook named 'carme_pre_save' is declared"):
        app.server.plugins.each("carme_pre_save", server=app.server, path="a", model={})
