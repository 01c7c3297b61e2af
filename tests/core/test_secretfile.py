"""The secret kept in a file (cookie signing, notebook trust): made once with mode 0600, read back
after, an empty file replaced, and a file that cannot be made is an error the caller handles."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from carme.auth import load_cookie_secret
from carme.secretfile import read_or_create_secret


def test_made_once_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "secret"
    first = read_or_create_secret(path, lambda: b"one")
    assert first == b"one" and path.read_bytes() == b"one"
    assert path.stat().st_mode & 0o077 == 0
    assert read_or_create_secret(path, lambda: b"two") == b"one"
    assert [p.name for p in path.parent.iterdir()] == ["secret"]  # no temporary file left


def test_an_empty_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"")
    assert read_or_create_secret(path, lambda: b"fresh") == b"fresh"
    assert path.read_bytes() == b"fresh"


def test_a_file_that_cannot_be_made_raises_and_the_cookie_secret_falls_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OSError):
        read_or_create_secret(blocker / "secret", lambda: b"x")
    with caplog.at_level(logging.ERROR):
        secret = load_cookie_secret(blocker / "secret")
    assert len(secret) == 32
    assert "cannot use the cookie secret file" in caplog.text
