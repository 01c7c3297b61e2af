"""Static files of the frontend: JupyterLab's bundle, labextensions and themes.

Content-hashed files (``main.580360276a959490.js``, ``remoteEntry.<hash>.js``) and requests
carrying ``?v=<hash>`` never change under the same URL, so they are cached for a year; every
other file is revalidated (``no-cache`` plus the ETag / Last-Modified that StaticFiles sends), so
an upgraded labextension is picked up on the next reload. Path traversal is refused by
StaticFiles' ``commonpath`` check.

Text assets (JavaScript, CSS, JSON, SVG, ...) go out gzip-compressed to clients that accept it
(JupyterLab's bundle is ~4x smaller so): compressed once, off the event loop, and kept in memory
per file version (path, size, mtime) up to ``GZIP_CACHE_BYTES``; the ETag is the file's, weak.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.routing import get_route_path
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from .service import LabService

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_HASHED_NAME = re.compile(r"(?:^|[.\-_])[0-9a-f]{16,}\.[A-Za-z0-9]+$")


def is_versioned(path: str, query_string: bytes) -> bool:
    """Whether a URL names content that never changes: a content-hashed file or a ``?v=`` query."""
    return bool(_HASHED_NAME.search(path.rsplit("/", 1)[-1])) or b"v=" in query_string


GZIP_CACHE_BYTES = 64 * 1024 * 1024
GZIP_MIN_SIZE = 1024
_COMPRESSIBLE = (".js", ".mjs", ".css", ".json", ".svg", ".html", ".map", ".txt", ".md", ".xml", ".ttf", ".eot")


def _accepts_gzip(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"accept-encoding":
            return b"gzip" in value
    return False


class CachedStaticFiles(StaticFiles):
    """StaticFiles over one or more folders (the first that has a file wins), with caching
    headers chosen by :func:`is_versioned`, and gzip for text assets."""

    def __init__(self, directories: Sequence[Path], follow_symlink: bool = True) -> None:
        super().__init__(directory=directories[0], check_dir=False, follow_symlink=follow_symlink)
        self.all_directories = [str(d) for d in directories]
        self._gzipped: dict[tuple[str, int, int], bytes] = {}
        self._gzipped_bytes = 0

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if (not isinstance(response, FileResponse) or response.status_code != 200 or not _accepts_gzip(scope)
                or response.stat_result is None or response.stat_result.st_size < GZIP_MIN_SIZE
                or not str(response.path).endswith(_COMPRESSIBLE)):
            return response
        stat = response.stat_result
        key = (str(response.path), stat.st_size, stat.st_mtime_ns)
        body = self._gzipped.get(key)
        if body is None:
            body = await asyncio.to_thread(_gzip_file, str(response.path))
            if self._gzipped_bytes + len(body) > GZIP_CACHE_BYTES:
                self._gzipped.clear()  # a new version of the frontend: start over
                self._gzipped_bytes = 0
            self._gzipped[key] = body
            self._gzipped_bytes += len(body)
        headers = {name: value for name, value in response.headers.items()
                   if name not in ("content-length", "etag", "content-type")}
        etag = response.headers.get("etag")
        if etag:
            headers["etag"] = "W/" + etag  # the same content, encoded: a weak validator
        headers["content-encoding"] = "gzip"
        headers["vary"] = "Accept-Encoding"
        return Response(body, headers=headers, media_type=response.media_type)

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = (
            IMMUTABLE if is_versioned(str(full_path), scope.get("query_string", b"")) else REVALIDATE)
        return response


def _gzip_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return gzip.compress(handle.read(), compresslevel=6, mtime=0)


def relative_path(scope: Scope) -> str:
    """The request path below the mount point, OS-normalised as StaticFiles expects."""
    return os.path.normpath(os.path.join(*get_route_path(scope).split("/")))


def _service(scope: Scope) -> LabService:
    return scope["app"].state.server.services["lab"]  # type: ignore[no-any-return]


class LabStatic:
    """ASGI app serving one kind of lab static files; the folders come from the lab service at
    request time (the service starts after the routes are made)."""

    def __init__(self, pick: Callable[[LabService], CachedStaticFiles]) -> None:
        self.pick = pick

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        files = self.pick(_service(scope))
        response = await files.get_response(relative_path(scope), scope)
        await response(scope, receive, send)


class LabextensionFiles:
    """ASGI app for ``/lab/extensions/<name>/<file>``: each name maps to the folder where it was
    discovered (the first on the labextensions path), so a shadowed copy is never served."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = _service(scope)
        parts = get_route_path(scope).lstrip("/").split("/")
        size = 2 if parts[0].startswith("@") else 1
        name, rest = "/".join(parts[:size]), "/".join(parts[size:])
        files = await service.labextension_files(name)
        if files is None or not rest:
            raise HTTPException(404, f"no labextension {name!r}")
        response = await files.get_response(os.path.normpath(rest), scope)
        await response(scope, receive, send)
