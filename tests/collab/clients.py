"""Python clients of carme's collaboration protocol for the tests: the session PUT, and a plain
pycrdt ``Provider`` over a ``websockets`` connection (the channel keeps RAW replies aside, as the
reference's §3.10 recipe says)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from jupyter_ydoc import YBlob, YFile, YNotebook
from jupyter_ydoc.ybasedoc import YBaseDoc
from pycrdt import Provider

from carme_collab import protocol
from tests.conftest import TOKEN

DEADLINE_S = 30.0


async def eventually(condition: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    """Wait until ``condition()`` is truthy; fail naming ``what`` after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def put_session(base_url: str, path: str, file_type: str = "notebook", file_format: str = "json",
                      token: str = TOKEN) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"token {token}"}, timeout=60) as http:
        return await http.put(f"/api/collaboration/session/{path}", json={"format": file_format, "type": file_type})


class Channel:
    """pycrdt's Channel over a websockets connection; RAW frames are decoded into ``raw``."""

    def __init__(self, ws: Any, path: str) -> None:
        self.ws = ws
        self._path = path
        self.raw: list[dict[str, Any]] = []
        self.awareness: list[bytes] = []

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except websockets.ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(message)

    async def recv(self) -> bytes:
        while True:
            message = await self.ws.recv()
            if isinstance(message, str):
                continue
            frame = protocol.parse(message)
            if frame.kind == protocol.RAW:
                self.raw.append(json.loads(frame.text))
                continue
            if frame.kind == protocol.AWARENESS:
                self.awareness.append(frame.payload)
                continue
            return bytes(message)


DOCS: dict[str, type[YBaseDoc]] = {"notebook": YNotebook, "file": YFile, "blob": YBlob}


@dataclass
class Joined:
    """A client in a room: its document, channel and session."""

    doc: Any
    channel: Channel
    session: dict[str, Any]
    provider: Provider
    ws: Any
    saves: int = field(default=0)

    async def save(self) -> dict[str, Any]:
        """Send RAW save and wait for the reply."""
        self.saves += 1
        save_id = self.saves
        await self.ws.send(protocol.save_request(save_id))
        return await eventually(lambda: next((m for m in self.channel.raw if m.get("responseTo") == save_id), None),
                                f"the reply to save {save_id}")


def room_url(ws_base: str, session: dict[str, Any], token: str = TOKEN, session_id: str | None = None) -> str:
    room = f"{session['format']}:{session['type']}:{session['fileId']}"
    sid = session["sessionId"] if session_id is None else session_id
    return f"{ws_base}/api/collaboration/room/{room}?sessionId={sid}" + (f"&token={token}" if token else "")


@contextlib.asynccontextmanager
async def joined(ws_base: str, http_base: str, path: str, file_type: str = "notebook", file_format: str = "json",
                 *, session: dict[str, Any] | None = None, doc: Any = None, token: str = TOKEN,
                 headers: dict[str, str] | None = None) -> AsyncIterator[Joined]:
    """Join the room of ``path`` with a plain pycrdt Provider; yields once synced."""
    if session is None:
        response = await put_session(http_base, path, file_type, file_format, token)
        assert response.status_code in (200, 201), response.text
        session = response.json()
    doc = doc if doc is not None else DOCS.get(file_type, YFile)()
    async with websockets.connect(room_url(ws_base, session, token if headers is None else ""), max_size=None,
                                  proxy=None, additional_headers=headers) as ws:
        channel = Channel(ws, path)
        async with Provider(doc.ydoc, channel) as provider:
            await asyncio.wait_for(provider.synced.wait(), DEADLINE_S)
            yield Joined(doc, channel, session, provider, ws)


def notebook(*sources: str) -> dict[str, Any]:
    """A small nbformat 4.5 notebook with one code cell per source."""
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {}, "outputs": [],
                   "source": source} for i, source in enumerate(sources)],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


class Client:
    """A pycrdt Provider whose connection can be dropped and opened again on the same document, as
    y-websocket does after a network drop or a server restart (same room URL, same sessionId)."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.ws: Any = None
        self.provider: Provider | None = None
        self.channel: Channel | None = None
        self._task: asyncio.Task[Any] | None = None

    async def connect(self, ws_base: str, session: dict[str, Any]) -> tuple[int, str] | None:
        """Connect and sync; None once synced, or (close code, reason) when the server closed first."""
        self.ws = await websockets.connect(room_url(ws_base, session), max_size=None, proxy=None)
        self.channel = Channel(self.ws, session["fileId"])
        self.provider = Provider(self.doc.ydoc, self.channel)
        self._task = asyncio.create_task(self.provider.start())
        synced = asyncio.ensure_future(self.provider.synced.wait())
        closed = asyncio.ensure_future(self.ws.wait_closed())
        await asyncio.wait([synced, closed], timeout=DEADLINE_S, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (synced, closed):
            waiter.cancel()
        if self.provider.synced.is_set():
            return None
        if self.ws.close_code is None:
            raise AssertionError("the room neither synced nor closed")
        return self.ws.close_code, self.ws.close_reason or ""

    async def disconnect(self) -> None:
        """Stop the provider (the connection may already be gone)."""
        if self.provider is not None:
            with contextlib.suppress(Exception):
                await self.provider.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        self.provider = self._task = self.ws = None
