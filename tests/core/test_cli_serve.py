"""`carme serve` as a real process: the URL it prints, signals, /api/shutdown, --base-url, the
Host check, start/stop of extensions through the lifespan, and no stray files."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.installing import Site
from tests.polling import wait_until
from tests.processes import CarmeServe, only

LIFECYCLE = """
import asyncio
from pathlib import Path
from carme import hookimpl
from carme.config import Setting

@hookimpl
def carme_register_settings():
    return [Setting("marker", str, "", "File the start and stop are written to"),
            Setting("hang", bool, False, "Never finish stopping")]

@hookimpl
async def carme_startup(server):
    await asyncio.sleep(0)
    with open(server.settings["lifecycle.marker"], "a") as f:
        f.write("started\\n")

@hookimpl
async def carme_shutdown(server):
    with open(server.settings["lifecycle.marker"], "a") as f:
        f.write("stopping\\n")
    if server.settings["lifecycle.hang"]:
        await asyncio.Event().wait()
    with open(server.settings["lifecycle.marker"], "a") as f:
        f.write("stopped\\n")
"""

@pytest.fixture
def run_carme(carme_serve: Callable[..., CarmeServe]) -> Callable[..., CarmeServe]:
    """`carme serve` with the repo's extensions disabled: these are tests of the core (with lab
    the printed URL would be /lab, collab would write its stores: tests/<extension> cover those)."""
    return lambda *args, **options: carme_serve(*only(), *args, **options)


@pytest.fixture
def lifecycle(site_dir: Site, tmp_path: Path) -> Path:
    site_dir.install("lifecycle", LIFECYCLE)
    return tmp_path / "marker.txt"


def snapshot(*folders: Path) -> set[str]:
    return {str(p) for folder in folders for p in folder.rglob("*") if "__pycache__" not in p.parts}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_through_the_lifespan(signum: int, run_carme: Callable[..., CarmeServe], lifecycle: Path,
                                                   tmp_path: Path, root: Path, jupyter_env: Path) -> None:
    before = snapshot(tmp_path, jupyter_env)
    carme = run_carme("--token", "secret", "--set", f"lifecycle.marker={lifecycle}")
    url = carme.url()
    assert url.endswith("/api/status?token=secret")
    assert httpx.get(url).status_code == 200
    assert lifecycle.read_text() == "started\n"
    carme.proc.send_signal(signum)
    assert carme.wait() == 0
    assert lifecycle.read_text() == "started\nstopping\nstopped\n"
    assert "carme stopped" in "".join(carme.log)
    # Only the marker the test extension wrote and the cookie secret, which is there to outlive
    # the server (browsers stay logged in across a restart): no other runtime file, nothing.
    assert snapshot(tmp_path, jupyter_env) - before == {str(lifecycle),
                                                         str(jupyter_env / "runtime" / "carme_cookie_secret")}


def test_second_ctrl_c_forces(run_carme: Callable[..., CarmeServe], lifecycle: Path) -> None:
    carme = run_carme("--set", f"lifecycle.marker={lifecycle}", "--set", "lifecycle.hang=true")
    carme.url()
    carme.proc.send_signal(signal.SIGINT)
    wait_until(lambda: "stopping" in lifecycle.read_text(), "the extension's shutdown to start")
    assert carme.proc.poll() is None  # hanging in the extension's shutdown
    carme.proc.send_signal(signal.SIGINT)
    assert carme.wait() == 1
    assert "forcing the exit" in "".join(carme.log)
    assert "stopped" not in lifecycle.read_text()


def test_generated_token_is_printed_and_works(run_carme: Callable[..., CarmeServe]) -> None:
    carme = run_carme()
    url = carme.url()
    token = re.search(r"token=([0-9a-f]+)$", url)
    assert token and len(token.group(1)) == 48
    base = url.split("/api/")[0]
    assert httpx.get(base + "/api/status").status_code == 403
    assert httpx.get(base + "/api/status", headers={"Authorization": f"token {token.group(1)}"}).status_code == 200


def test_no_auth_is_said_loudly(run_carme: Callable[..., CarmeServe]) -> None:
    carme = run_carme("--no-auth")
    url = carme.url()
    assert url.endswith("/api/status")  # no token to show
    assert httpx.get(url).status_code == 200
    assert "Authentication is off" in carme.wait_for("Authentication is off").group(0)


def test_api_shutdown_stops_the_server(run_carme: Callable[..., CarmeServe], lifecycle: Path) -> None:
    carme = run_carme("--token", "t", "--set", f"lifecycle.marker={lifecycle}")
    base = carme.base_url()
    assert httpx.post(base + "/api/shutdown").status_code == 403
    assert carme.proc.poll() is None
    assert httpx.post(base + "/api/shutdown", headers={"Authorization": "token t"}).status_code == 202
    assert carme.wait() == 0
    assert lifecycle.read_text().endswith("stopped\n")


def test_base_url(run_carme: Callable[..., CarmeServe]) -> None:
    carme = run_carme("--token", "t", "--base-url", "/user/me/")
    url = carme.url()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/user/me/api/status\?token=t", url)
    base = url.split("/user/me/")[0]
    assert httpx.get(url).status_code == 200
    assert httpx.get(base + "/api/status?token=t").status_code == 404
    assert httpx.get(base + "/user/me/api").json()["version"].startswith("2.")


def test_host_check_on_loopback(run_carme: Callable[..., CarmeServe]) -> None:
    carme = run_carme("--token", "t")
    url = carme.url()
    assert httpx.get(url, headers={"Host": "localhost"}).status_code == 200
    refused = httpx.get(url, headers={"Host": "evil.example:80"})
    assert refused.status_code == 403
    assert "evil.example" in refused.json()["message"]


def test_port_in_use_moves_to_the_next(run_carme: Callable[..., CarmeServe]) -> None:
    first = run_carme("--token", "t")
    port = int(re.search(r":(\d+)/", first.url()).group(1))  # type: ignore[union-attr]
    second = run_carme("--token", "t", "--port", str(port))
    assert f"The port {port} is already in use" in second.wait_for("already in use").group(0) + "".join(second.log)
    assert httpx.get(second.url()).status_code == 200


def test_failing_extension_start_exits_3_naming_it(run_carme: Callable[..., CarmeServe], site_dir: Site) -> None:
    site_dir.install("sidecar", """
from carme import hookimpl

@hookimpl
def carme_startup(server):
    raise OSError("sidecar port is taken")
""")
    carme = run_carme()
    assert carme.wait() == 3  # uvicorn's start-up failure code
    assert "extension 'sidecar' failed to start: sidecar port is taken" in "".join(carme.log)


REFUSES = """
from carme import hookimpl
from carme.config import ConfigError, Setting

@hookimpl
def carme_register_settings():
    return [Setting("mode", str, "auto", "How to run")]

@hookimpl
def carme_startup(server):
    # What an extension checks only when it starts (a template that exists, two settings that agree).
    raise ConfigError(f"picky.mode = {server.settings['picky.mode']!r} is not valid: expected a mode on this machine")
"""


def test_an_extension_refusing_its_setting_at_start_up_exits_2_in_one_line(
        run_carme: Callable[..., CarmeServe], site_dir: Site) -> None:
    site_dir.install("picky", REFUSES)
    carme = run_carme("--set", "picky.mode=turbo")
    assert carme.wait() == 2  # as a bad value the settings refuse, not uvicorn's 3
    assert carme.output().strip().splitlines()[-1] == (
        "carme: configuration error: extension 'picky' failed to start: picky.mode = 'turbo' is not valid: "
        "expected a mode on this machine")
    assert "Traceback" not in carme.output()


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "watch.step_ms=900", "--set", "watch.debounce_ms=100"],
     "extension 'watch' failed to start: watch.step_ms = 900 is not valid: expected at most watch.debounce_ms (100)"),
    (["--set", "watch.debounce_ms=-5"],
     "command line --set watch.debounce_ms: watch.debounce_ms = -5 is not valid: expected an integer >= 1"),
])
def test_a_bundled_extension_refusing_its_setting_exits_2_in_one_line(
        carme_serve: Callable[..., CarmeServe], args: list[str], message: str) -> None:
    carme = carme_serve(*only("watch"), *args)
    assert carme.wait() == 2
    assert carme.output().strip().splitlines()[-1] == f"carme: configuration error: {message}"
    assert "Traceback" not in carme.output()


def test_config_error_exits_2(run_carme: Callable[..., CarmeServe]) -> None:
    carme = run_carme("--set", "port=eighty")
    assert carme.wait() == 2
    assert "command line --set port: port = 'eighty' is not valid: expected an integer" in "".join(carme.log)


def test_environment_isolated() -> None:
    # The fixtures point every Jupyter path at a temp folder; subprocesses inherit that.
    assert "JUPYTER_CONFIG_DIR" in os.environ
