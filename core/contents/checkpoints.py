"""File checkpoints stored as jupyter_server stores them, so both servers see the same ones.

One checkpoint per file, id ``checkpoint``, kept at
``<dir>/.ipynb_checkpoints/<base>-checkpoint<ext>``. Functions here are blocking: call them in a
thread. Paths are OS paths already checked by :class:`carme.contents.paths.PathPolicy`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from datetime import UTC, datetime
from typing import Any

from ..errors import ApiError
from ..jsonutil import isoformat
from . import fileio

CHECKPOINT_DIR = ".ipynb_checkpoints"
CHECKPOINT_ID = "checkpoint"


def checkpoint_path(os_path: str, checkpoint_id: str = CHECKPOINT_ID) -> str:
    """Where the checkpoint of the file at ``os_path`` lives."""
    directory, name = os.path.split(os_path)
    base, ext = os.path.splitext(name)
    return os.path.join(directory, CHECKPOINT_DIR, f"{base}-{checkpoint_id}{ext}")


def checkpoint_model(cp_path: str, checkpoint_id: str = CHECKPOINT_ID) -> dict[str, Any]:
    mtime = os.stat(cp_path).st_mtime
    return {"id": checkpoint_id, "last_modified": isoformat(datetime.fromtimestamp(mtime, UTC))}


def _check_id(path: str, checkpoint_id: str) -> None:
    if checkpoint_id != CHECKPOINT_ID:
        raise no_such_checkpoint(path, checkpoint_id)


def no_such_checkpoint(path: str, checkpoint_id: str) -> ApiError:
    return ApiError(404, f"Checkpoint does not exist: {path}@{checkpoint_id}", "Not Found")


def list_checkpoints(os_path: str) -> list[dict[str, Any]]:
    cp = checkpoint_path(os_path)
    return [checkpoint_model(cp)] if os.path.isfile(cp) else []


def create_checkpoint(os_path: str, path: str, umask: int) -> dict[str, Any]:
    if os.path.isdir(os_path):
        raise ApiError(400, f"Cannot create a checkpoint of the directory {path}", "Bad Request")
    if not os.path.isfile(os_path):
        raise ApiError(404, f"File does not exist: {path}", "Not Found")
    cp = checkpoint_path(os_path)
    os.makedirs(os.path.dirname(cp), exist_ok=True)
    fileio.atomic_copy(os_path, cp, umask=umask)
    return checkpoint_model(cp)


def restore_checkpoint(os_path: str, path: str, checkpoint_id: str, umask: int) -> None:
    _check_id(path, checkpoint_id)
    cp = checkpoint_path(os_path, checkpoint_id)
    if not os.path.isfile(cp):
        raise no_such_checkpoint(path, checkpoint_id)
    fileio.atomic_copy(cp, os_path, umask=umask)


def delete_checkpoint(os_path: str, path: str, checkpoint_id: str) -> None:
    _check_id(path, checkpoint_id)
    cp = checkpoint_path(os_path, checkpoint_id)
    if not os.path.isfile(cp):
        raise no_such_checkpoint(path, checkpoint_id)
    os.unlink(cp)


def rename_checkpoints(old_os_path: str, new_os_path: str) -> None:
    """Move a file's checkpoint along with it (after the file itself moved)."""
    old_cp = checkpoint_path(old_os_path)
    if os.path.isfile(old_cp):
        new_cp = checkpoint_path(new_os_path)
        os.makedirs(os.path.dirname(new_cp), exist_ok=True)
        shutil.move(old_cp, new_cp)


def delete_checkpoints(os_path: str) -> None:
    """Drop a deleted file's checkpoint (a deleted directory took its checkpoints with it)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(checkpoint_path(os_path))
