"""Contents models: the JSON shapes of /api/contents, built from stat results.

Every model has all the keys jupyter_server's ``validate_model`` requires: name, path, type,
writable, created, last_modified, mimetype, size, content, format, hash, hash_algorithm.
Timestamps are ISO-8601 UTC strings with a ``Z`` suffix.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

from ..errors import ApiError

Model = dict[str, Any]
Kind = Literal["directory", "file", "notebook"]
HASH_ALGORITHM = "sha256"
HASH_BESIDE_BYTES = 1 << 20  # from this size a file's hash runs beside the parse of its content
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(seconds: float) -> str:
    """An mtime/ctime as jupyter_server writes it; invalid times become the epoch, not a crash."""
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        moment = _EPOCH
    return moment.isoformat().replace("+00:00", "Z")


def http_date(iso: str) -> str:
    """ISO model timestamp -> the HTTP date of a ``Last-Modified`` header."""
    return format_datetime(datetime.fromisoformat(iso.replace("Z", "+00:00")), usegmt=True)


def kind_of(name: str, st: os.stat_result) -> Kind:
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    return "notebook" if name.endswith(".ipynb") else "file"


def guess_mimetype(name: str) -> str | None:
    return mimetypes.guess_type(name, strict=False)[0]


_GUESS = object()


def stat_model(path: str, st: os.stat_result, kind: Kind, writable: bool, mimetype: Any = _GUESS) -> Model:
    """A model without content for an entry with stat ``st`` (size null for directories).

    ``mimetype`` is guessed from the name for files unless given.
    """
    return {
        "name": path.rpartition("/")[2],
        "path": path,
        "type": kind,
        "writable": writable,
        "created": timestamp(st.st_ctime),
        "last_modified": timestamp(st.st_mtime),
        "mimetype": (guess_mimetype(path) if kind == "file" else None) if mimetype is _GUESS else mimetype,
        "size": None if kind == "directory" else st.st_size,
        "content": None,
        "format": None,
        "hash": None,
        "hash_algorithm": None,
    }


def add_hash(model: Model, data: bytes) -> None:
    model["hash"] = hashlib.new(HASH_ALGORITHM, data).hexdigest()
    model["hash_algorithm"] = HASH_ALGORITHM


def hash_beside(data: bytes) -> Callable[[Model], None]:
    """Start hashing ``data``; the returned function waits for the hash and adds it to a model.

    hashlib lets go of the GIL while it hashes a big buffer, so a big file is hashed on a thread of
    its own while the caller parses it: reading a 20 MB notebook then costs the parse, not the
    parse plus the hash (~16 ms). A small file is hashed when the model asks for it.
    """
    if len(data) < HASH_BESIDE_BYTES:
        return lambda model: add_hash(model, data)
    digest = hashlib.new(HASH_ALGORITHM)
    thread = threading.Thread(target=digest.update, args=(data,), name="carme-hash", daemon=True)
    thread.start()

    def finish(model: Model) -> None:
        thread.join()
        model["hash"] = digest.hexdigest()
        model["hash_algorithm"] = HASH_ALGORITHM

    return finish


def file_content(data: bytes, format: str | None, path: str) -> tuple[str, str]:
    """Raw bytes -> (content, format): UTF-8 text when possible (or asked), else base64.

    base64 is line-wrapped every 76 characters, as jupyter_server's ``encodebytes`` sends it.
    """
    if format != "base64":
        try:
            return data.decode("utf-8"), "text"
        except UnicodeDecodeError:
            if format == "text":
                raise ApiError(400, f"{path} is not UTF-8 encoded", "bad format") from None
    return base64.encodebytes(data).decode("ascii"), "base64"


@dataclass
class FileStream:
    """What /files needs to send one file: an OS path to stream from, or the bytes themselves."""

    name: str
    size: int
    last_modified: float
    os_path: str | None = None
    stat_result: os.stat_result | None = None
    data: bytes | None = None
