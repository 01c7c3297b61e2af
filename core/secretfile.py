"""A secret kept in a file of its own (cookie signing, notebook trust): read it, or make it there
once, so that it outlives the process and every server sharing the file agrees on it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def read_or_create_secret(path: Path, make: Callable[[], bytes]) -> bytes:
    """The secret in ``path``; when there is none (or the file is empty), ``make()``'s, written there
    with mode 0600. The file appears whole or not at all: written under a temporary name and
    linked into place, so two servers starting at once agree on the one that won the link.
    Raises OSError when the file can be neither read nor written."""
    try:
        secret = path.read_bytes()
        if secret:
            return secret
        path.unlink()  # empty: left by a writer that did not write atomically
    except FileNotFoundError:
        pass
    secret = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:  # another server wrote one meanwhile: theirs is the secret
            secret = path.read_bytes() or secret
    finally:
        temporary.unlink(missing_ok=True)
    return secret
