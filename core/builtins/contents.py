"""The built-in contents plugin: settings, the default manager, the routes and the events.

At start-up ``server.contents`` is whatever :func:`carme.hooks.carme_contents_manager` answers
first; the file-system manager below answers last, so an extension's manager wins. Every
operation is published on the event bus (``contents_service`` schema, as jupyter_server emits
it) and every change on disk also calls :func:`carme.hooks.carme_on_contents_changed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jupyter_core.paths import jupyter_data_dir
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from ..api import contents as contents_api
from ..api.limits import BodyLimitMiddleware
from ..memory import ReleaseMemoryMiddleware
from ..config import Setting
from ..contents.filemanager import FileContentsManager
from ..contents.manager import ContentsManager
from ..contents.trust import Notary
from ..events import CONTENTS_SCHEMA
from ..hooks import hookimpl

if TYPE_CHECKING:
    from ..server import Server

HIDE_GLOBS = ["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~"]


@hookimpl
def carme_register_settings() -> list[Setting]:
    return [
        Setting("allow_hidden", bool, False, "Serve and write hidden files (names starting with a dot)"),
        Setting("allow_symlinks_outside_root", bool, False,
                "Follow symlinks that lead outside the root (refused by default; jupyter_server follows them)"),
        Setting("hide_globs", list, HIDE_GLOBS, "Names left out of directory listings (glob patterns)"),
        Setting("max_body_size", int, 512 * 1024 * 1024, "Largest request body in bytes (bigger ones get 413)",
                minimum=0),
        Setting("max_copy_folder_size_mb", int, 500, "Largest directory the contents API copies, in MB", minimum=0),
        Setting("delete_to_trash", bool, False,
                "Send deleted files to the trash (needs the send2trash package) instead of deleting them"),
        Setting("always_delete_dir", bool, True,
                "Deleting a non-empty directory removes its contents (False: 400, as jupyter_server without trash)"),
        Setting("trust_notebooks", bool, True,
                "Sign notebooks saved with all cells trusted and trust them when reopened (as jupyter_server)"),
        Setting("untitled_notebook", str, "Untitled", "Base name of new notebooks"),
        Setting("untitled_file", str, "untitled", "Base name of new files"),
        Setting("untitled_directory", str, "Untitled Folder", "Base name of new directories"),
    ]


@hookimpl(trylast=True)
def carme_contents_manager(server: Server) -> ContentsManager:
    s = server.settings
    return FileContentsManager(
        str(server.root_dir), allow_hidden=s["allow_hidden"],
        allow_symlinks_outside_root=s["allow_symlinks_outside_root"], hide_globs=s["hide_globs"],
        max_copy_folder_size_mb=s["max_copy_folder_size_mb"], delete_to_trash=s["delete_to_trash"],
        always_delete_dir=s["always_delete_dir"], untitled_notebook=s["untitled_notebook"],
        untitled_file=s["untitled_file"], untitled_directory=s["untitled_directory"],
        notary=Notary(jupyter_data_dir()) if s["trust_notebooks"] else None,
    )


@hookimpl
def carme_startup(server: Server) -> None:
    server.contents = server.hook.carme_contents_manager(server=server)

    async def publish(action: str, path: str, source_path: str | None) -> None:
        data = {"action": action, "path": path}
        if source_path is not None:
            data["source_path"] = source_path
        server.events.emit(CONTENTS_SCHEMA, data)
        if action != "get":
            await server.notify("carme_on_contents_changed", action=action, path=path, source_path=source_path)

    server.contents.add_listener(publish)


@hookimpl
def carme_shutdown(server: Server) -> None:
    notary = getattr(server.contents, "notary", None)  # a replacement manager may have none
    if isinstance(notary, Notary):
        notary.close()


@hookimpl
def carme_register_routes(server: Server) -> list[BaseRoute]:
    return contents_api.routes()


@hookimpl
def carme_register_api_paths(server: Server) -> list[str]:
    return ["/files/"]  # /api/ is the server plugin's


@hookimpl
def carme_register_middleware(server: Server) -> list[Middleware]:
    return [Middleware(BodyLimitMiddleware, limit=server.settings["max_body_size"]),
            Middleware(ReleaseMemoryMiddleware)]
