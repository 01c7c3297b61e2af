"""Signing in to the example product from a test, as its sign-in form does."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from tests.serving import Served


@contextlib.contextmanager
def sign_in(served: Served, username: str = "ada") -> Iterator[httpx.Client]:
    """An HTTP client holding ``username``'s product session cookie (password: the name reversed)."""
    with httpx.Client(base_url=served.url, timeout=30) as browser:
        answer = browser.post("/signin", data={"username": username, "password": username[::-1], "next": "/"})
        assert answer.status_code == 302
        yield browser
