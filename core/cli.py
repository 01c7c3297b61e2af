"""The ``carme`` command: serve, extension list|enable|disable, config, --version, and the
subcommands enabled extensions add (:func:`carme.hooks.carme_register_cli_commands`).

``carme serve`` runs the app of :func:`carme.create_app` on uvicorn. The first Ctrl-C or SIGTERM
shuts down gracefully (the ASGI lifespan stops every extension and kernel); a second Ctrl-C
forces the exit. Nothing is written to disk: the URL with the token goes to the log (stderr).

Exit codes: 0 after a clean stop (signal or /api/shutdown), 1 when forced, 2 for a configuration
error, 3 when the app fails to start (an extension's start-up raised; uvicorn's code).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
import webbrowser
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import __version__, config
from .config import ConfigError
from .plugins import PluginError, Plugins
from .running import uvicorn_options
from .server import StartupConfigError, StartupError

if TYPE_CHECKING:
    import uvicorn

    from .app import CarmeApp
    from .server import Server

log = logging.getLogger("carme.cli")



CORE_COMMANDS = ("serve", "extension", "config")
STARTUP_FAILED = 3  # an extension failed to start (uvicorn's own code for a failed start-up)


@dataclass(frozen=True)
class Command:
    """A ``carme`` subcommand added by an extension (:func:`carme.hooks.carme_register_cli_commands`).

    ``add_arguments`` declares the command's arguments on its own argparse subparser (the
    server flags of ``carme serve`` are there for the taking: :func:`add_server_arguments`);
    ``run`` gets the parsed arguments and returns the exit code. A
    :class:`carme.config.ConfigError` raised by ``run`` exits 2 with its message.
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    # True: arguments the parser does not know are handed over in ``args.unknown_args`` instead
    # of being an error (`carme singleuser` gets jupyter_server flags from a hub's Spawner.args).
    accepts_unknown_args: bool = False


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``carme serve`` that configure the server (all but the root folder), for
    commands that serve an app of their own; :func:`app_from_args` reads them."""
    parser.add_argument("--port", type=int, help="port (default 8888; 0 picks a free one)")
    parser.add_argument("--ip", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--token", help="auth token (default: JUPYTER_TOKEN, else generated)")
    parser.add_argument("--no-auth", action="store_true", help="turn authentication off (trusted networks only)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--base-url", help="URL prefix, e.g. /user/me/")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any setting by name, e.g. --set watch.polling=true (repeatable; see `carme config`)")
    parser.add_argument("--enable", action="append", default=[], metavar="EXT", help="enable an extension for this run")
    parser.add_argument("--disable", action="append", default=[], metavar="EXT",
                        help="disable an extension for this run")


def extension_commands(plugins: Plugins) -> dict[str, Command]:
    """The commands the loaded plugins add, by name. A plugin that fails, or a name the core or
    another plugin already has, is logged as an error naming the plugin; the rest still work."""
    owners: dict[str, str] = dict.fromkeys(CORE_COMMANDS, "carme")
    commands: dict[str, Command] = {}
    for plugin in plugins.implementers("carme_register_cli_commands"):
        try:
            declared = plugins.call(plugin, "carme_register_cli_commands") or []
        except Exception as exc:  # a broken extension must not take the whole command line down
            log.error("extension %r failed in carme_register_cli_commands: %s: %s", plugin, type(exc).__name__, exc)
            continue
        for command in declared:
            if command.name in owners:
                log.error("extension %r adds the command %r, which %r already has; ignored", plugin, command.name,
                          owners[command.name])
                continue
            owners[command.name] = plugin
            commands[command.name] = command
    return commands


def build_parser(extra: Sequence[Command] = ()) -> argparse.ArgumentParser:
    """The ``carme`` argument parser: the core's commands, then ``extra`` (extensions' commands)."""
    parser = argparse.ArgumentParser(prog="carme", description="An embeddable Jupyter server.")
    parser.add_argument("--version", action="version", version=f"carme {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG, INFO, WARNING, ...)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve a folder")
    serve.add_argument("root_dir", nargs="?", help="folder to serve (default: current directory)")
    add_server_arguments(serve)

    ext = commands.add_parser("extension", help="list, enable or disable extensions")
    ext_commands = ext.add_subparsers(dest="ext_command", metavar="ACTION", required=True)
    ext_commands.add_parser("list", help="show installed extensions, their state and whether they load")
    for action in ("enable", "disable"):
        cmd = ext_commands.add_parser(action, help=f"{action} an extension (persisted in a config file)")
        cmd.add_argument("name")
        level = cmd.add_mutually_exclusive_group()
        level.add_argument("--user", dest="level", action="store_const", const="user",
                           help="in the user config dir (jupyter --config-dir)")
        level.add_argument("--sys-prefix", dest="level", action="store_const", const="sys-prefix",
                           help="in sys.prefix/etc/jupyter (default)")
        level.add_argument("--system", dest="level", action="store_const", const="system",
                           help="in the system config dir")

    commands.add_parser("config", help="print every setting with its value, source and description")
    for command in extra:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        if command.add_arguments is not None:
            command.add_arguments(sub)
    return parser


def _cli_layers(args: argparse.Namespace) -> list[config.ConfigLayer]:
    """The command line as two config layers: ``--set KEY=VALUE`` (text), then the named flags."""
    sets = config.ConfigLayer("command line", text=True)
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set port=9000")
        sets.values[key.strip()] = (f"--set {key.strip()}", text)
    flags: dict[str, Any] = {key: getattr(args, key, None) for key in ("port", "ip", "token", "base_url", "root_dir")
                             if getattr(args, key, None) is not None}
    if args.no_browser:
        flags["open_browser"] = False
    if args.no_auth:
        flags["auth_enabled"] = False
    extensions = {name: True for name in args.enable} | {name: False for name in args.disable}
    return [sets, config.overrides_layer("command line", flags, extensions)]


def app_from_args(args: argparse.Namespace, **create_app_args: Any) -> CarmeApp:
    """The app ``carme serve ARGS`` would serve (config files < environment < command line <
    ``create_app_args``, keyword arguments of :func:`carme.create_app`). ``args`` holds the flags
    of :func:`add_server_arguments`."""
    from .app import create_app

    # Enabling an extension that is not installed is an error; disabling one is already done.
    return create_app(_cli=_cli_layers(args), _cli_extensions=args.enable, **create_app_args)


def _is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def bind(ip: str, port: int, retries: int = 50) -> socket.socket:
    """A listening socket on ``ip``: ``port``, or one of the next ``retries`` ports when it is
    taken (as jupyter_server's ``port_retries``)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    tries = 1 if port == 0 else retries + 1
    for candidate in range(port, port + tries):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise ConfigError(f"cannot listen on {ip}:{candidate}: {exc.strerror}") from None
            log.info("The port %d is already in use, trying another port.", candidate)
            continue
        sock.listen(2048)
        sock.set_inheritable(True)
        return sock
    taken = f"port {port} on {ip} is" if tries == 1 else f"ports {port}-{port + tries - 1} on {ip} are all"
    raise ConfigError(f"{taken} in use; pick another with --port")


def make_uvicorn(app: CarmeApp, log_level: str) -> uvicorn.Server:
    """A uvicorn server for ``app`` that leaves signal handling to carme (see :func:`_run`)."""
    import uvicorn  # lazily: `carme extension list` and friends start faster without it

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            # uvicorn's handlers re-raise the signal after a clean shutdown, which turns a
            # clean stop into an error exit; _run installs carme's own.
            yield

    return Server(uvicorn.Config(app, log_level=log_level.lower(), access_log=False, log_config=None,
                                 **uvicorn_options(app)))


def _urls(server: Server, ip: str, port: int) -> list[str]:
    settings = server.settings
    base = settings["base_url"].strip("/")
    # The front page: lab's, or whatever default_url was set to (`carme dashboard` sets "/").
    frontend = (("lab" in server.plugins.extensions and server.plugins.extensions["lab"].enabled)
                or settings.source("default_url") != "default")
    landing = "/" + (base + "/" if base else "") + (settings["default_url"].lstrip("/") if frontend else "api/status")
    query = f"?token={server.auth.token}" if server.auth.enabled else ""
    if ip in ("127.0.0.1", "localhost"):
        hosts = ["localhost", "127.0.0.1"]
    elif ip in ("0.0.0.0", "::"):  # every interface: name this machine, and loopback
        hosts = [socket.gethostname(), "127.0.0.1"]
    else:
        hosts = [f"[{ip}]" if ":" in ip else ip]
    scheme = "https" if settings["certfile"] else "http"
    return [f"{scheme}://{host}:{port}{landing}{query}" for host in hosts]


async def _run(app: CarmeApp, uv_server: uvicorn.Server, sock: socket.socket, open_browser: bool) -> int:
    """Serve until a signal or /api/shutdown; 0 after a clean stop, 1 if forced or uvicorn failed
    to start, 3 if an extension did; a refused setting raises StartupConfigError (exit 2 in main)."""
    loop = asyncio.get_running_loop()
    running: asyncio.Future[None] | None = None  # what a forced exit cancels: the start, then uvicorn
    forced = False

    def on_signal(signum: int) -> None:
        nonlocal forced
        if not uv_server.should_exit:
            log.info("Received %s: shutting down (Ctrl-C again to force)", signal.Signals(signum).name)
            uv_server.should_exit = True
        elif signum == signal.SIGINT:
            log.warning("Second Ctrl-C: forcing the exit")
            forced = uv_server.force_exit = True
            if running is not None:
                running.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    app.server.on_shutdown_request(lambda: setattr(uv_server, "should_exit", True))
    try:
        # Started here, not in uvicorn's lifespan: there a failure is a traceback and exit 3 whatever
        # it is; a refused setting (StartupConfigError) reaches main as the configuration error it is.
        running = asyncio.ensure_future(app.server.start())
        try:
            await running
        except StartupConfigError:
            raise
        except StartupError as exc:
            log.error("%s", exc, exc_info=exc.__cause__)
            return STARTUP_FAILED
        except asyncio.CancelledError:  # forced while starting
            return 1
        serving = running = asyncio.ensure_future(uv_server.serve(sockets=[sock]))
        while not uv_server.started and not serving.done():
            await asyncio.sleep(0.02)
        if uv_server.started:
            urls = _urls(app.server, app.server.settings["ip"], sock.getsockname()[1])
            log.info("Serving %s", app.server.root_dir)
            log.info("carme %s is running at:\n    %s", __version__, "\n    ".join(urls))
            log.info("Use Control-C to stop this server and shut down all kernels (twice to force).")
            if not app.server.auth.enabled:
                log.warning("Authentication is off: anyone who can reach %s:%d can run code as you.",
                            app.server.settings["ip"], sock.getsockname()[1])
            if open_browser:
                # In a thread: without a display, webbrowser may run a text browser and wait for it.
                threading.Thread(target=webbrowser.open, args=(urls[0],), daemon=True).start()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if not forced:
            await app.server.stop()  # when uvicorn stopped before its lifespan did (does nothing then)
    if forced or not uv_server.started:
        return 1
    log.info("carme stopped")
    return 0


def serve_app(app: CarmeApp, log_level: str = "INFO") -> int:
    """Bind and serve ``app`` as ``carme serve`` does, until a signal or /api/shutdown; the exit code."""
    server = app.server
    ip = server.settings["ip"]
    if server.auth.allow_remote_access is None:
        # DNS-rebinding defence (jupyter_server's check_host) when only local clients can connect.
        server.auth.allow_remote_access = not _is_loopback(ip)
    sock = bind("127.0.0.1" if ip == "localhost" else ip, server.settings["port"], server.settings["port_retries"])
    uv_server = make_uvicorn(app, log_level)
    with asyncio.Runner(loop_factory=uv_server.config.get_loop_factory()) as runner:
        return runner.run(_run(app, uv_server, sock, server.settings["open_browser"]))


def serve(args: argparse.Namespace) -> int:
    """``carme serve``: build the app, bind, serve until stopped."""
    return serve_app(app_from_args(args), args.log_level)


def _enabled_plugins(extensions: Mapping[str, bool]) -> Plugins:
    """The built-in plugins and the extensions the configuration enables (for their commands),
    with the command line's --enable/--disable applied: a disabled extension is not even
    imported (its modules would stay in the server's memory for nothing)."""
    plugins = Plugins()
    plugins.register_builtins()
    layers = [*config.read_layers(), config.overrides_layer("command line", {}, extensions)]
    plugins.load_extensions(config.extension_states(layers))
    return plugins


def main(argv: Sequence[str] | None = None) -> int:
    # --log-level first: loading the extensions (for their commands) may already log errors.
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--log-level", default="INFO")
    early.add_argument("--enable", action="append", default=[])
    early.add_argument("--disable", action="append", default=[])
    known = early.parse_known_args(argv)[0]
    logging.basicConfig(level=known.log_level.upper(),
                        format="[%(levelname).1s %(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")
    try:
        extra = extension_commands(_enabled_plugins({name: True for name in known.enable}
                                                    | {name: False for name in known.disable}))
    except ConfigError as exc:  # an unreadable config file: no command can be trusted to run
        print(f"carme: configuration error: {exc}", file=sys.stderr)
        return 2
    except PluginError as exc:  # a built-in plugin is missing or broken
        print(f"carme: {exc}", file=sys.stderr)
        return 3
    parser = build_parser(list(extra.values()))
    args, unknown = parser.parse_known_args(argv)
    if unknown and not (args.command in extra and extra[args.command].accepts_unknown_args):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.unknown_args = unknown
    try:
        if args.command in extra:
            return extra[args.command].run(args)
        if args.command == "serve":
            return serve(args)
        if args.command == "extension":
            from .extension_cli import run_extension_command

            return run_extension_command(args)
        if args.command == "config":
            from .extension_cli import print_config

            return print_config()
    except ConfigError as exc:
        print(f"carme: configuration error: {exc}", file=sys.stderr)
        return 2
    except PluginError as exc:  # the app could not be assembled (a plugin failed, two claim a route)
        print(f"carme: cannot start: {exc}", file=sys.stderr)
        return 3
    except BrokenPipeError:
        # `carme config | head`: the reader left; say nothing more (and nothing at exit either).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
