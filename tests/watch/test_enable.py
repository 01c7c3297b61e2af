"""Disabling the watch extension removes all of it; enabling brings it back."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from carme import create_app
from carme.events import EventError
from carme_watch import FILE_CHANGED
from tests.serving import AUTH, TOKEN, serve
from tests.polling import wait_until
from tests.watch.conftest import Recorder, Subscriber, subscribe, wait_watching



def assert_absent(app: object, recorder: Recorder) -> None:
    server = app.server  # type: ignore[attr-defined]
    assert "watch" not in server.services
    assert FILE_CHANGED not in server.events.schemas
    with pytest.raises(EventError):
        server.events.emit(FILE_CHANGED, {"path": "a", "change": "added", "source": "external"})
    # The recorder implements carme_watch_on_files_changed, but without the extension there is no such spec.
    assert server.plugins.pm.hook.carme_watch_on_files_changed.spec is None
    assert not any(k.startswith("watch.") for k in server.settings)


def assert_present_and_live(app: object, root: Path, recorder: Recorder) -> None:
    server = app.server  # type: ignore[attr-defined]
    assert FILE_CHANGED in server.events.schemas
    assert server.plugins.pm.hook.carme_watch_on_files_changed.spec is not None
    with serve(app) as served:
        wait_watching(served)
        assert httpx.get(served.url + "/api/watch", headers=AUTH).json()["state"] == "watching"
        with subscribe(served) as ws:
            (root / "live.txt").write_text("x")
            Subscriber(ws).wait_change("live.txt", "added")
        wait_until(lambda: any(c.path == "live.txt" for c in recorder.changes()), "the hook to see live.txt")
    assert "watch" not in server.services  # stopped with the server


def test_create_app_without_watch(root: Path, recorder: Recorder) -> None:
    app = create_app(str(root), token=TOKEN, extensions=[], plugins=[recorder])
    assert_absent(app, recorder)
    with serve(app) as served:
        assert httpx.get(served.url + "/api/watch", headers=AUTH).status_code == 404
        assert "watch" not in app.server.services


def test_create_app_with_watch(root: Path, recorder: Recorder) -> None:
    assert_present_and_live(create_app(str(root), token=TOKEN, extensions=["watch"], plugins=[recorder]),
                            root, recorder)


def test_mapping_disables_over_default(root: Path, recorder: Recorder) -> None:
    assert_absent(create_app(str(root), token=TOKEN, extensions={"watch": False}, plugins=[recorder]), recorder)


def test_config_file_disables_then_enables(root: Path, jupyter_env: Path, recorder: Recorder) -> None:
    config = jupyter_env / "config" / "carme_config.json"
    # A disabled extension's section stays valid in the file, and is ignored.
    config.write_text(json.dumps({"extensions": {"watch": False}, "watch": {"polling": True}}))
    app = create_app(str(root), token=TOKEN, plugins=[recorder])
    assert app.server.plugins.extensions["watch"].enabled is False
    assert_absent(app, recorder)

    config.write_text(json.dumps({"extensions": {"watch": True}, "watch": {"debounce_ms": 200}}))
    recorder = Recorder()
    app = create_app(str(root), token=TOKEN, plugins=[recorder])
    assert app.server.settings["watch.debounce_ms"] == 200
    assert app.server.settings.source("watch.debounce_ms") == str(config)
    assert_present_and_live(app, root, recorder)


def test_environment_disables(root: Path, recorder: Recorder) -> None:
    app = create_app(str(root), token=TOKEN, plugins=[recorder], environ={"CARME_EXTENSIONS__WATCH": "false"})
    assert_absent(app, recorder)


def test_bad_setting_is_named(root: Path) -> None:
    from carme.config import ConfigError

    with pytest.raises(ConfigError, match="watch.debounce_ms"):
        create_app(str(root), token=TOKEN, extensions=["watch"], settings={"watch.debounce_ms": "soon"})


def test_cli_disable_then_enable(root: Path, jupyter_env: Path, recorder: Recorder) -> None:
    """`carme extension disable watch --user` (the real command) removes it; enable brings it back."""
    import subprocess
    import sys

    def carme(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "carme.cli", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    carme("extension", "disable", "watch", "--user")
    assert_absent(create_app(str(root), token=TOKEN, plugins=[recorder]), recorder)
    assert any(line.split()[:1] == ["watch"] and "disabled" in line for line in carme("extension", "list").splitlines())

    carme("extension", "enable", "watch", "--user")
    assert_present_and_live(create_app(str(root), token=TOKEN, plugins=[recorder]), root, recorder)
