"""Fixtures for the terminals extension: carme with `terminals` on a real uvicorn (on the test's
own loop, so a test can look at the terminal manager while real clients talk to it), and a
websocket client speaking terminado's protocol."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from carme import create_app
from tests.polling import DEADLINE_S
from tests.serving import AUTH, TOKEN, Served, serve_here

# A real shell without the machine's rc files, so its prompt and output are the same everywhere.
SHELL = [shutil.which("bash") or "/bin/bash", "--norc", "--noprofile"]


def terminals_app(root: Path, **settings: Any) -> Any:
    return create_app(str(root), token=TOKEN, extensions=["terminals"], config_files=False,
                      settings={"terminals.shell": SHELL, **settings})


@contextlib.asynccontextmanager
async def serving(root: Path, **settings: Any) -> AsyncIterator[Served]:
    async with serve_here(terminals_app(root, **settings)) as served:
        yield served


def manager_of(served: Served) -> Any:
    return served.app.server.services["terminals"]


class TermClient:
    """One browser on a terminal: everything received is kept; ``output`` is the stdout text."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[list[Any]] = []
        self.output = ""

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, served: Served, name: str, **kwargs: Any) -> AsyncIterator[TermClient]:
        async with connect(f"{served.ws_url}/terminals/websocket/{name}", additional_headers=AUTH,
                           max_size=None, proxy=None, **kwargs) as ws:
            yield cls(ws)

    async def recv(self, timeout: float = DEADLINE_S) -> list[Any]:
        async with asyncio.timeout(timeout):  # (asyncio.wait_for here made a cancelled recv hang on 3.11)
            frame = await self.ws.recv()
        assert isinstance(frame, str), "terminado's frames are text"
        message = orjson.loads(frame)
        self.messages.append(message)
        if message[0] == "stdout":
            self.output += message[1]
        return message

    async def wait_output(self, pattern: str, timeout: float = DEADLINE_S) -> re.Match[str]:
        """Read until ``pattern`` matches the output received so far."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    match = re.search(pattern, self.output)
                    if match:
                        return match
                    await self.recv(timeout)
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} in the output: {self.output[-2000:]!r}") from None

    async def wait_message(self, kind: str, timeout: float = DEADLINE_S) -> list[Any]:
        for message in self.messages:
            if message[0] == kind:
                return message
        async with asyncio.timeout(timeout):
            while True:
                message = await self.recv(timeout)
                if message[0] == kind:
                    return message

    async def send(self, *message: Any) -> None:
        await self.ws.send(orjson.dumps(list(message)).decode())

    async def type(self, text: str) -> None:
        await self.send("stdin", text)

    async def run(self, command: str, marker: str) -> str:
        """Type ``command`` and wait for the line ``marker`` prints; the output after the command."""
        start = len(self.output)
        await self.type(command + "\r")
        match = await self.wait_output(rf"(?m)^{re.escape(marker)}\r?$")
        return self.output[start:match.start()]


@pytest.fixture
def new_terminal() -> Callable[..., Any]:
    async def create(served: Served, **body: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=DEADLINE_S) as client:
            response = await client.post("/api/terminals", json=body)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    return create
