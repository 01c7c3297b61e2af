"""`carme extension list|enable|disable`, `carme config`, `carme --version`, and what a
disabled or broken extension does to a served app."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from carme import __version__, create_app
from carme.cli import main
from tests.serving import TOKEN, serve
from tests.installing import Site

HELLO = """
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from carme import hookimpl
from carme.config import Setting

@hookimpl
def carme_register_settings():
    return [Setting("greeting", str, "hello", "What /hello/ping answers")]

@hookimpl
def carme_register_routes(server):
    async def ping(request):
        return PlainTextResponse(server.settings["hello.greeting"])
    return [Route("/hello/ping", ping)]
"""

BROKEN = """
raise ImportError("carme_test_broken needs a library that is not installed")
"""

TYPO = """
from carme import hookimpl

@hookimpl
def carme_register_rotues(server):
    return []
"""


@pytest.fixture
def installed(site_dir: Site) -> Site:
    site_dir.install("hello", HELLO, dist="carme-hello", version="1.2.3")
    site_dir.install("broken", BROKEN, dist="carme-broken", version="0.0.1")
    return site_dir


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> dict[str, list[str]]:
    lines = out.strip().splitlines()
    return {line.split()[0]: line.split(None, 5) for line in lines[1:]}


def test_list_shows_name_dist_version_state_source_and_errors(installed: Site, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "extension", "list")
    assert code == 0
    table = rows(out)
    assert table["hello"][:6] == ["hello", "carme-hello", "1.2.3", "enabled", "default", "ok"]
    name, dist, version, state, source, loads = table["broken"]
    assert (name, dist, version, state, source) == ("broken", "carme-broken", "0.0.1", "enabled", "default")
    assert loads.startswith("ERROR ImportError: carme_test_broken needs a library")


def test_broken_extension_does_not_stop_the_others(installed: Site, root: Path) -> None:
    app = create_app(str(root), token=TOKEN)
    assert app.server.plugins.extensions["broken"].error
    with serve(app) as served:
        answer = httpx.get(served.url + "/hello/ping", headers={"Authorization": f"token {TOKEN}"})
    assert answer.status_code == 200
    assert answer.text == "hello"


def test_unknown_hook_marks_the_extension_broken(site_dir: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site_dir.install("typo", TYPO)
    _code, out, _ = run(capsys, "extension", "list")
    assert "ERROR implements unknown hook 'carme_register_rotues'" in rows(out)["typo"][5]


def test_disable_persists_and_the_routes_answer_404(installed: Site, config_levels: dict[str, Path], root: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "extension", "disable", "hello")
    assert code == 0
    written = config_levels["sys-prefix"] / "carme_config.d" / "hello.json"
    assert json.loads(written.read_text()) == {"extensions": {"hello": False}}
    assert str(written) in out

    _code, out, _ = run(capsys, "extension", "list")
    assert rows(out)["hello"][3:5] == ["disabled", str(written)]
    # Disabled but still probed: it would load.
    assert rows(out)["hello"][5] == "ok"

    app = create_app(str(root), token=TOKEN)
    assert not app.server.plugins.pm.has_plugin("hello")
    with serve(app) as served:
        answer = httpx.get(served.url + "/hello/ping", headers={"Authorization": f"token {TOKEN}"})
    assert answer.status_code == 404


@pytest.mark.parametrize("level", ["user", "sys-prefix", "system"])
def test_enable_disable_levels(level: str, installed: Site, config_levels: dict[str, Path],
                               capsys: pytest.CaptureFixture[str]) -> None:
    flag = [] if level == "sys-prefix" else [f"--{level}"]
    assert run(capsys, "extension", "disable", "hello", *flag)[0] == 0
    path = config_levels[level] / "carme_config.d" / "hello.json"
    assert json.loads(path.read_text()) == {"extensions": {"hello": False}}
    assert sorted(p.name for p in path.parent.iterdir()) == ["hello.json"]  # no temp file left
    assert run(capsys, "extension", "enable", "hello", *flag)[0] == 0
    assert json.loads(path.read_text()) == {"extensions": {"hello": True}}
    assert rows(run(capsys, "extension", "list")[1])["hello"][3:5] == ["enabled", str(path)]


def test_user_level_wins_over_system_and_says_so(installed: Site, config_levels: dict[str, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "extension", "enable", "hello", "--user")
    _code, out, _ = run(capsys, "extension", "disable", "hello", "--system")
    assert "stays enabled" in out and str(config_levels["user"]) in out
    assert rows(run(capsys, "extension", "list")[1])["hello"][3] == "enabled"


def test_enable_unknown_extension_lists_the_known_ones(installed: Site, config_levels: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "extension", "enable", "nope")
    assert code == 2
    assert "no installed extension is named 'nope'" in err
    known = err.split("installed extensions: ")[1].strip().split(", ")
    assert {"broken", "hello"} <= set(known) and known == sorted(known)
    assert not (config_levels["sys-prefix"] / "carme_config.d").exists()


def test_enable_unwritable_level_names_the_file(installed: Site, config_levels: dict[str, Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # A file where the carme_config.d folder should be: unwritable even for root.
    config_levels["system"].mkdir(parents=True)
    (config_levels["system"] / "carme_config.d").write_text("not a folder")
    code, _out, err = run(capsys, "extension", "enable", "hello", "--system")
    assert code == 2
    assert f"cannot write {config_levels['system'] / 'carme_config.d' / 'hello.json'}" in err
    assert "(try --user)" in err


def test_config_prints_value_source_and_description(installed: Site, jupyter_env: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config_file = jupyter_env / "config" / "carme_config.json"
    config_file.write_text(json.dumps({"port": 9001, "hello": {"greeting": "hi"}}))
    monkeypatch.setenv("CARME_IP", "127.0.0.2")
    code, out, _ = run(capsys, "config")
    assert code == 0
    table = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert table["port"].split()[:3] == ["port", "9001", str(config_file)]
    assert table["ip"].split()[:4] == ["ip", '"127.0.0.2"', "environment", "CARME_IP"]
    assert table["hello.greeting"].split()[:4] == ["hello.greeting", '"hi"', str(config_file), "hello"]
    assert table["port"].split()[3] == "carme.builtins.server"
    assert table["kernel_info_timeout"].split()[:4] == ["kernel_info_timeout", "60.0", "default", "carme.builtins.kernels"]
    assert "What /hello/ping answers" in table["hello.greeting"]
    assert table["auth_enabled"].split()[:3] == ["auth_enabled", "true", "default"]
    assert "Require authentication" in table["auth_enabled"]


def test_config_hides_the_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CARME_TOKEN", "secret-value")
    _code, out, _ = run(capsys, "config")
    assert "secret-value" not in out
    assert '"(hidden)"' in out


def test_config_error_names_file_key_and_expectation(jupyter_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = jupyter_env / "config" / "carme_config.json"
    config_file.write_text(json.dumps({"port": "eighty"}))
    code, _out, err = run(capsys, "config")
    assert code == 2
    assert f"{config_file}: port = 'eighty' is not valid: expected an integer" in err


GREET = """
from carme import hookimpl
from carme.cli import Command, add_server_arguments, app_from_args

def add_arguments(parser):
    parser.add_argument("who")
    parser.add_argument("--shout", action="store_true")
    add_server_arguments(parser)

def run(args):
    app = app_from_args(args, root_dir=args.who)
    greeting = f"hello {args.who}" + ("!" if args.shout else "")
    print(greeting, app.server.settings["port"], app.server.root_dir.name)
    return 7

@hookimpl
def carme_register_cli_commands():
    return [Command("greet", "greet someone", run, add_arguments)]
"""

CLAIMS_SERVE = """
from carme import hookimpl
from carme.cli import Command

@hookimpl
def carme_register_cli_commands():
    return [Command("serve", "not the real one", lambda args: 99)]
"""

FAILS = """
from carme import hookimpl

@hookimpl
def carme_register_cli_commands():
    raise RuntimeError("no commands today")
"""


def test_hook_carme_register_cli_commands(site_dir: Site, root: Path, config_levels: dict[str, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    site_dir.install("greet", GREET)
    code, out, _ = run(capsys, "greet", str(root), "--shout", "--port", "9123")
    assert (code, out) == (7, f"hello {root}! 9123 {root.name}\n")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "greet someone" in capsys.readouterr().out

    # Only enabled extensions add commands.
    assert run(capsys, "extension", "disable", "greet")[0] == 0
    with pytest.raises(SystemExit) as exited:
        main(["greet", "ada"])
    assert exited.value.code == 2
    assert "invalid choice: 'greet'" in capsys.readouterr().err


def test_cli_command_conflicts_and_failures_leave_the_rest_working(site_dir: Site, caplog: pytest.LogCaptureFixture,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    site_dir.install("greet", GREET)
    site_dir.install("claims", CLAIMS_SERVE)
    site_dir.install("fails", FAILS)
    code, out, _ = run(capsys, "greet", "--port", "9124", "somewhere")
    assert code == 7 and out.startswith("hello somewhere 9124")
    assert "extension 'claims' adds the command 'serve', which 'carme' already has; ignored" in caplog.text
    assert "extension 'fails' failed in carme_register_cli_commands: RuntimeError: no commands today" in caplog.text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"carme {__version__}"
