"""Files next to the notebooks (``dashboards/files/PATH``), through Voila's allow and deny lists.

A path (relative to the root) is served when it matches a ``file_allowlist`` pattern and no
``file_denylist`` pattern (whole-path matches, case-insensitive), and is never a notebook: the
source of a dashboard does not leave the server this way, whatever the lists say. The file is
read through the contents manager, so the root, hidden-file and symlink rules apply too.
Anything refused is a 404, as if it did not exist.
"""

from __future__ import annotations

import mimetypes
import re
from typing import TYPE_CHECKING

from starlette.responses import FileResponse, Response

from carme.errors import ApiError

from .settings import compile_patterns

if TYPE_CHECKING:
    from carme.server import Server


class FileRules:
    """The compiled allow and deny lists."""

    def __init__(self, allow: list[str], deny: list[str], never: tuple[str, ...] = ()) -> None:
        self.allow: list[re.Pattern[str]] = compile_patterns(allow, "file_allowlist")
        self.deny: list[re.Pattern[str]] = compile_patterns(deny, "file_denylist")
        self.never = (".ipynb", *never)  # notebooks and scripts that are dashboards: their source

    def allows(self, path: str) -> bool:
        if path.lower().endswith(self.never):
            return False
        return any(p.fullmatch(path) for p in self.allow) and not any(p.fullmatch(path) for p in self.deny)


async def file_response(server: Server, rules: FileRules, path: str) -> Response:
    """The file at API ``path`` when the rules allow it; ApiError 404 otherwise."""
    if not rules.allows(path):
        raise ApiError(404, f"No such file: {path}", "Not Found")
    stream = await server.contents.open_file(path)
    media_type = mimetypes.guess_type(stream.name, strict=False)[0] or "application/octet-stream"
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
               # an SVG or HTML file must not run script in the dashboard's origin
               "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"}
    if stream.os_path is not None:
        return FileResponse(stream.os_path, media_type=media_type, headers=headers, stat_result=stream.stat_result)
    assert stream.data is not None
    return Response(stream.data, media_type=media_type, headers=headers)
