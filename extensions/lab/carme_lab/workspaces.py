"""JupyterLab workspaces (the saved layout of each named workspace), one file per workspace.

Files are ``<workspaces dir>/<slug>.jupyterlab-workspace`` with the slug JupyterLab uses
(lowercase name + 4 hex digits of its SHA-256), so carme and ``jupyter lab`` share them. Blocking:
the routes call it through a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from carme.errors import ApiError
from carme.jsonutil import isoformat

from .fileio import atomic_write_text

log = logging.getLogger("carme.lab.workspaces")

WORKSPACE_SUFFIX = ".jupyterlab-workspace"


def slugify(name: str, max_length: int = 128 - len(WORKSPACE_SUFFIX)) -> str:
    """The file stem of workspace ``name``: safe characters only, plus a short hash against
    collisions between names that clean up the same way."""
    signature = "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:4]
    value = re.sub(r"[^\w\s-]", "", name.lower(), flags=re.ASCII).strip()
    value = re.sub(r"[-\s]+", "-", value)
    return value[: max_length - len(signature)] + signature


class WorkspaceStore:
    """List, read, write and delete workspaces in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_of(self, name: str) -> Path:
        return self.folder / (slugify(name) + WORKSPACE_SUFFIX)

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable workspace %s: %s", path, exc)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
            log.warning("ignoring workspace %s: no metadata", path)
            return None
        return data

    def list(self) -> dict[str, list[Any]]:
        """``{"ids": [...], "values": [...]}`` as jupyterlab_server answers the listing."""
        ids: list[str] = []
        values: list[dict[str, Any]] = []
        if self.folder.is_dir():
            for path in sorted(self.folder.glob("*" + WORKSPACE_SUFFIX)):
                data = self._read(path)
                if data is not None and isinstance(data["metadata"].get("id"), str):
                    ids.append(data["metadata"]["id"])
                    values.append(data)
        return {"ids": ids, "values": values}

    def get(self, name: str) -> dict[str, Any]:
        """The saved workspace, or an empty one carrying its id (what JupyterLab expects)."""
        data = self._read(self.path_of(name))
        return data if data is not None else {"data": {}, "metadata": {"id": name}}

    def put(self, name: str, workspace: Any) -> None:
        """Save a workspace; its ``metadata.id`` must be ``name``."""
        if not isinstance(workspace, dict) or not isinstance(workspace.get("metadata"), dict):
            raise ApiError(400, "workspace must be an object with 'data' and 'metadata'", "Bad Request")
        if workspace["metadata"].get("id") != name:
            raise ApiError(400, f"workspace metadata id {workspace['metadata'].get('id')!r} does not match "
                                f"the name in the URL {name!r}", "Bad Request")
        if not isinstance(workspace.get("data", {}), dict):
            raise ApiError(400, "workspace 'data' must be an object", "Bad Request")
        path = self.path_of(name)
        previous = self._read(path)
        now = isoformat(datetime.now(UTC))
        metadata = dict(workspace["metadata"])
        metadata["last_modified"] = now
        metadata["created"] = (previous or {}).get("metadata", {}).get("created") or now
        atomic_write_text(path, json.dumps({**workspace, "data": workspace.get("data", {}), "metadata": metadata}))

    def delete(self, name: str) -> None:
        path = self.path_of(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ApiError(404, f"workspace {name!r} does not exist", "Not Found") from None
