"""The ``carme`` command: serve, extension list|enable|disable, config, --version."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import webbrowser
from collections.abc import Sequence
from typing import Any

from . import __version__, config
from .config import ConfigError

log = logging.getLogger("carme.cli")


def _parse_set(items: Sequence[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set cull_idle_timeout=600")
        values[key.strip()] = value
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carme", description="An embeddable Jupyter server.")
    parser.add_argument("--version", action="version", version=f"carme {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG, INFO, WARNING, ...)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve a folder")
    serve.add_argument("root_dir", nargs="?", help="folder to serve (default: current directory)")
    serve.add_argument("--port", type=int, help="port (default 8888; 0 picks a free one)")
    serve.add_argument("--ip", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--token", help="auth token (default: JUPYTER_TOKEN, else generated)")
    serve.add_argument("--no-auth", action="store_true", help="turn authentication off (trusted networks only)")
    serve.add_argument("--no-browser", action="store_true", help="do not open a browser")
    serve.add_argument("--base-url", help="URL prefix, e.g. /user/me/")
    serve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="any setting by name, e.g. --set watch.polling=true (repeatable)")
    serve.add_argument("--enable", action="append", default=[], metavar="EXT", help="enable an extension for this run")
    serve.add_argument("--disable", action="append", default=[], metavar="EXT", help="disable an extension for this run")

    ext = commands.add_parser("extension", help="list, enable or disable extensions")
    ext_commands = ext.add_subparsers(dest="ext_command", metavar="ACTION", required=True)
    ext_commands.add_parser("list", help="show installed extensions and their state")
    for action in ("enable", "disable"):
        cmd = ext_commands.add_parser(action, help=f"{action} an extension (persisted)")
        cmd.add_argument("name")
        level = cmd.add_mutually_exclusive_group()
        level.add_argument("--user", dest="level", action="store_const", const="user", help="in the user config dir")
        level.add_argument("--sys-prefix", dest="level", action="store_const", const="sys-prefix",
                           help="in sys.prefix/etc/jupyter (default)")
        level.add_argument("--system", dest="level", action="store_const", const="system",
                           help="in the system config dir")

    commands.add_parser("config", help="print every setting with its value, source and description")
    return parser


def _cli_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, bool]]:
    values: dict[str, Any] = {}
    for key, attr in (("port", "port"), ("ip", "ip"), ("token", "token"), ("base_url", "base_url"),
                      ("root_dir", "root_dir")):
        if getattr(args, attr) is not None:
            values[key] = getattr(args, attr)
    if args.no_browser:
        values["open_browser"] = False
    if args.no_auth:
        values["auth_enabled"] = False
    extensions = {name: True for name in args.enable} | {name: False for name in args.disable}
    return values, extensions


def _free_port(ip: str) -> int:
    with socket.socket() as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    values, extensions = _cli_settings(args)
    cli = config.ConfigLayer("command line", text=True)
    cli.values = {key: (f"--set {key}", text) for key, text in _parse_set(args.set).items()}
    app = create_app(extensions=extensions or None, _cli=[cli, config.overrides_layer("command line", values)])
    server = app.server
    settings = server.settings
    ip, port = settings["ip"], settings["port"] or _free_port(settings["ip"])
    if server.auth.allow_remote_access is None:
        server.auth.allow_remote_access = not _is_loopback(ip)
    uv_config = uvicorn.Config(app, host=ip, port=port, log_level=args.log_level.lower(), lifespan="on",
                            ws_max_size=settings.get("websocket_max_message_size", 512 * 1024 * 1024),
                            timeout_graceful_shutdown=10, access_log=False)
    uv_server = uvicorn.Server(uv_config)
    server.on_shutdown_request(lambda: setattr(uv_server, "should_exit", True))

    base = settings["base_url"].strip("/")
    landing = "/" + (base + "/" if base else "") + (settings["default_url"].lstrip("/") if _has_frontend(server) else "api/status")
    host = "localhost" if _is_loopback(ip) else ip
    query = f"?token={server.auth.token}" if server.auth.enabled else ""

    async def run() -> None:
        task = asyncio.create_task(uv_server.serve())
        while not uv_server.started and not task.done():
            await asyncio.sleep(0.05)
        if uv_server.started:
            url = f"http://{host}:{port}{landing}{query}"
            log.info("Serving %s", server.root_dir)
            log.info("carme %s is running at:\n    %s\n    http://127.0.0.1:%d%s%s", __version__, url, port, landing, query)
            log.info("Use Control-C to stop this server and shut down all kernels (twice to force).")
            if settings["open_browser"]:
                webbrowser.open(url)
        await task

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    return 0


def _has_frontend(server: Any) -> bool:
    return "lab" in server.plugins.extensions and server.plugins.extensions["lab"].enabled


def _is_loopback(ip: str) -> bool:
    import ipaddress

    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="[%(levelname).1s %(asctime)s %(name)s] %(message)s",
                        datefmt="%H:%M:%S")
    try:
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
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
