"""A minimal HTTP/1.1 keep-alive client on asyncio streams.

The load generator shares the machine's two cores with the server, so it must be cheap: this
client does no more than write a request and read one response (Content-Length or chunked).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit


class HttpError(Exception):
    """A response that was not the expected status."""


class Connection:
    """One keep-alive connection to ``base_url`` sending the given extra headers."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return self

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json") -> tuple[int, bytes]:
        """Send one request and return (status, body).

        A server may close a keep-alive connection that sat idle (uvicorn after 5 s); as every
        HTTP client does, a request that finds its reused connection closed is sent again once on
        a new one.
        """
        if self._writer is None:
            await self.open()
            return await self._exchange(method, path, body, content_type)
        try:
            return await self._exchange(method, path, body, content_type)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                raise
            await self.close()
            await self.open()
            return await self._exchange(method, path, body, content_type)

    async def _exchange(self, method: str, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self._extra}"
                f"Content-Length: {len(body)}\r\n")
        if body:
            head += f"Content-Type: {content_type}\r\n"
        self._writer.write(head.encode() + b"\r\n" + body)
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = await self._reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = await self._read_chunked()
        else:
            data = b""
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, data

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        chunks = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append((await self._reader.readexactly(size + 2))[:-2])


async def expect(conn: Connection, method: str, path: str, statuses: tuple[int, ...] = (200,),
                 body: bytes = b"") -> bytes:
    """Request and raise :class:`HttpError` unless the status is one of ``statuses``."""
    status, data = await conn.request(method, path, body)
    if status not in statuses:
        raise HttpError(f"{method} {path} -> {status}: {data[:300]!r}")
    return data
