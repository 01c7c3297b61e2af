"""Layered settings: defaults < config files < CARME_* environment < CLI flags < create_app,
and every kind of bad configuration named precisely."""

from __future__ import annotations

import logging

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from carme import create_app
from carme.cli import app_from_args, build_parser
from carme.config import ConfigError
from tests.environment import isolated_environ
from tests.installing import Site

EXT = """
from carme import hookimpl
from carme.config import Setting

@hookimpl
def carme_register_settings():
    return [Setting("interval", float, 1.0, "Seconds between polls"),
            Setting("mode", str, "auto", "How to watch", choices=("auto", "poll"))]
"""


@pytest.fixture
def config_dir(jupyter_env: Path) -> Path:
    return jupyter_env / "config"


@pytest.fixture
def ext(site_dir: Site) -> Site:
    site_dir.install("poller", EXT)
    return site_dir


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_defaults(root: Path) -> None:
    settings = create_app(str(root)).server.settings
    assert settings["port"] == 8888
    assert settings.source("port") == "default"


def test_config_file_overrides_default(config_dir: Path, root: Path) -> None:
    path = write(config_dir / "carme_config.json", {"port": 9001})
    settings = create_app(str(root)).server.settings
    assert settings["port"] == 9001
    assert settings.source("port") == str(path)


def test_drop_in_files_sorted_and_main_file_wins(config_dir: Path, root: Path) -> None:
    write(config_dir / "carme_config.d" / "a.json", {"port": 1, "ip": "127.0.0.3"})
    write(config_dir / "carme_config.d" / "b.json", {"port": 2})
    main = write(config_dir / "carme_config.json", {"port": 3})
    settings = create_app(str(root)).server.settings
    assert settings["port"] == 3 and settings.source("port") == str(main)
    assert settings["ip"] == "127.0.0.3"
    main.unlink()
    settings = create_app(str(root)).server.settings
    assert settings["port"] == 2 and settings.source("port") == str(config_dir / "carme_config.d" / "b.json")


def test_user_config_dir_wins_over_sys_prefix(config_dir: Path, jupyter_env: Path, root: Path) -> None:
    from jupyter_core import paths

    write(Path(paths.ENV_CONFIG_PATH[0]) / "carme_config.json", {"port": 5, "ip": "127.0.0.5"})
    write(config_dir / "carme_config.json", {"port": 6})
    settings = create_app(str(root)).server.settings
    assert (settings["port"], settings["ip"]) == (6, "127.0.0.5")


def test_environment_overrides_files(config_dir: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(config_dir / "carme_config.json", {"port": 9001, "auth_enabled": True})
    monkeypatch.setenv("CARME_PORT", "9002")
    monkeypatch.setenv("CARME_AUTH_ENABLED", "no")
    monkeypatch.setenv("CARME_LOCAL_HOSTNAMES", '["localhost", "box"]')
    settings = create_app(str(root)).server.settings
    assert settings["port"] == 9002 and settings.source("port") == "environment CARME_PORT"
    assert settings["auth_enabled"] is False
    assert settings["local_hostnames"] == ["localhost", "box"]


def test_cli_overrides_environment(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARME_PORT", "9002")
    monkeypatch.setenv("CARME_IP", "127.0.0.9")
    args = build_parser().parse_args(["serve", str(root), "--port", "9003", "--set", "allow_origin=https://a.example"])
    settings = app_from_args(args).server.settings
    assert settings["port"] == 9003 and settings.source("port") == "command line"
    assert settings["allow_origin"] == "https://a.example"
    assert settings.source("allow_origin") == "command line --set allow_origin"
    assert settings["ip"] == "127.0.0.9"
    assert settings["root_dir"] == str(root)


def test_create_app_arguments_win(root: Path, monkeypatch: pytest.MonkeyPatch, config_dir: Path) -> None:
    write(config_dir / "carme_config.json", {"base_url": "/from-file/"})
    monkeypatch.setenv("CARME_TOKEN", "from-env")
    app = create_app(str(root), token="from-arg", base_url="/arg/", settings={"port": 1234})
    settings = app.server.settings
    assert (settings["token"], settings["base_url"], settings["port"]) == ("from-arg", "/arg/", 1234)
    assert settings.source("token") == "create_app"


def test_extension_section_in_every_layer(ext: Site, config_dir: Path, root: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert create_app(str(root)).server.settings.section("poller") == {"interval": 1.0, "mode": "auto"}
    write(config_dir / "carme_config.json", {"poller": {"interval": 2}})
    settings = create_app(str(root)).server.settings
    assert settings["poller.interval"] == 2.0
    monkeypatch.setenv("CARME_POLLER__MODE", "poll")
    settings = create_app(str(root)).server.settings
    assert settings.section("poller") == {"interval": 2.0, "mode": "poll"}
    assert settings.source("poller.mode") == "environment CARME_POLLER__MODE"
    settings = create_app(str(root), settings={"poller.interval": 0.5}).server.settings
    assert settings["poller.interval"] == 0.5


def test_disabled_extension_section_is_ignored(ext: Site, config_dir: Path, root: Path) -> None:
    write(config_dir / "carme_config.json", {"poller": {"interval": 2, "whatever": 1},
                                             "extensions": {"poller": False}})
    settings = create_app(str(root)).server.settings
    assert not any(key.startswith("poller.") for key in settings)


def test_extension_state_from_environment(ext: Site, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARME_EXTENSIONS__POLLER", "0")
    info = create_app(str(root)).server.plugins.extensions["poller"]
    assert (info.enabled, info.source) == (False, "environment")


# -- errors ----------------------------------------------------------------------------------


def error_of(root: Path, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as raised:
        create_app(str(root), **kwargs)  # type: ignore[arg-type]
    return str(raised.value)


def test_bad_json_names_file_and_line(config_dir: Path, root: Path) -> None:
    path = write(config_dir / "carme_config.d" / "x.json", '{\n  "port": 1,\n}')
    assert error_of(root).startswith(f"{path}: not valid JSON: ") and "line 3" in error_of(root)


def test_top_level_not_an_object(config_dir: Path, root: Path) -> None:
    path = write(config_dir / "carme_config.json", [1, 2])
    assert error_of(root) == f"{path}: expected a JSON object at the top level"


def test_bad_value_names_file_key_and_expected(config_dir: Path, root: Path) -> None:
    path = write(config_dir / "carme_config.json", {"auth_enabled": "yes"})
    assert error_of(root) == f"{path}: auth_enabled = 'yes' is not valid: expected a boolean"


def test_unknown_key_names_file_and_lists_known(config_dir: Path, root: Path) -> None:
    path = write(config_dir / "carme_config.json", {"prot": 1})
    message = error_of(root)
    assert message.startswith(f"{path}: unknown setting 'prot'; expected one of: ")
    assert "port" in message


def test_unknown_key_in_section(ext: Site, config_dir: Path, root: Path) -> None:
    path = write(config_dir / "carme_config.json", {"poller": {"intervall": 3}})
    assert error_of(root) == f"{path}: unknown setting 'poller.intervall'; section 'poller' has: interval, mode"


def test_section_must_be_an_object(ext: Site, config_dir: Path, root: Path) -> None:
    path = write(config_dir / "carme_config.json", {"poller": 3})
    assert error_of(root).startswith(f"{path}: poller = 3 is not valid: expected an object of 'poller' settings")


def test_choice_not_allowed(ext: Site, config_dir: Path, root: Path) -> None:
    path = write(config_dir / "carme_config.json", {"poller": {"mode": "inotify"}})
    assert error_of(root) == f"{path}: poller.mode = 'inotify' is not valid: expected one of 'auto', 'poll'"


def test_extensions_must_map_to_booleans(config_dir: Path, root: Path) -> None:
    path = write(config_dir / "carme_config.json", {"extensions": {"poller": "off"}})
    assert error_of(root) == f"{path}: extensions must be an object of extension name -> true/false"


def test_bad_environment_value_names_the_variable(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARME_PORT", "eighty")
    assert error_of(root) == "environment CARME_PORT: port = 'eighty' is not valid: expected an integer >= 0"


def test_unknown_environment_variable_warns_and_goes_on(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    # The environment is shared with other programs (a script's own CARME_CMD): warn, start anyway.
    monkeypatch.setenv("CARME_CMD", "make all")
    monkeypatch.setenv("CARME_PORT", "9999")
    with caplog.at_level(logging.WARNING, logger="carme.config"):
        settings = create_app(str(root)).server.settings
    assert settings["port"] == 9999
    warned = [r.getMessage() for r in caplog.records if r.name == "carme.config"]
    assert warned and warned[0].startswith("environment CARME_CMD: unknown setting 'cmd'; expected one of: ")


def test_unknown_key_in_a_file_still_stops_carme_with_the_environment_lenient(
        config_dir: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARME_CMD", "make all")
    path = write(config_dir / "carme_config.json", {"cmd": 1})
    assert error_of(root).startswith(f"{path}: unknown setting 'cmd'")


def test_trace_variable_is_not_a_setting(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARME_TRACE_HOOKS", "1")
    assert create_app(str(root)).server.settings["port"] == 8888


def test_bad_create_app_setting(root: Path) -> None:
    assert error_of(root, settings={"port": "x"}) == "create_app: port = 'x' is not valid: expected an integer >= 0"
    assert error_of(root, settings={"nope": 1}).startswith("create_app: unknown setting 'nope'")


def test_unknown_extension_asked_by_name(ext: Site, root: Path) -> None:
    for extensions in (["pollr"], {"pollr": True}):
        message = error_of(root, extensions=extensions)
        assert message.startswith("unknown extension(s) pollr; installed: ")
        assert "poller" in message.split("installed: ")[1].split(", ")
    # Turning off what is not there is not an error.
    assert create_app(str(root), extensions={"pollr": False}).server.plugins.extensions["poller"].enabled


def test_cli_set_errors(root: Path) -> None:
    for item, expected in (("port", "--set 'port': expected KEY=VALUE"),
                           ("port=x", "command line --set port: port = 'x' is not valid: expected an integer")):
        args = build_parser().parse_args(["serve", str(root), "--set", item])
        with pytest.raises(ConfigError) as raised:
            app_from_args(args)
        assert str(raised.value).startswith(expected)


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to make a config file another user cannot read")
def test_unreadable_config_file_is_named() -> None:
    """A config file the server's user cannot read stops `carme` with exit 2 naming the file,
    instead of being skipped (its settings would silently not apply) or a traceback."""
    home = Path(tempfile.mkdtemp(prefix="carme-config-"))  # pytest's tmp_path is private to root
    try:
        home.chmod(0o755)
        env = isolated_environ(home)
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
            Path(env[name]).chmod(0o777)
        secret = write(Path(env["JUPYTER_CONFIG_DIR"]) / "carme_config.json", '{"port": 9000}')
        secret.chmod(0o600)  # root's
        done = subprocess.run([*NOBODY, sys.executable, "-m", "carme.cli", "config"], capture_output=True, text=True,
                              env={**env, "HOME": str(home)}, cwd=home, timeout=60)
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"{secret}: cannot read: Permission denied" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)
