"""Fast JSON in and out (orjson) and jupyter_server's timestamp format."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.responses import Response


def dumps(value: Any) -> bytes:
    """Encode to JSON bytes; non-str dict keys and datetimes are handled."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def read_json_or_none(path: Path, log: logging.Logger) -> Any:
    """The JSON in ``path``, or None when it cannot be read or parsed, logged on ``log`` as a
    warning naming the file and why: for files found on disk (labextensions, page configs) that
    the server does without when one is broken. Blocking file I/O."""
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        log.warning("ignoring %s: %s", path, exc)
        return None


def isoformat(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, as jupyter_server writes timestamps."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def utcnow() -> datetime:
    return datetime.now(UTC)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
