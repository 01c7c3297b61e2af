"""Reading and writing a handful of ZMQ sockets from asyncio without a future per message.

zmq.asyncio creates a future (and a loop callback) for every recv. The relay instead watches
each socket's file descriptor once (``loop.add_reader``) and, when woken, drains every queued
message with non-blocking receives. A zmq FD is edge-triggered: it signals that ``ZMQ_EVENTS``
may have changed, and reading ``ZMQ_EVENTS`` re-arms it; the callback reads it, so a socket whose
messages are not being read (a slow client) does not spin the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import zmq

POLLIN = zmq.POLLIN
POLLOUT = zmq.POLLOUT
EVENTS = zmq.EVENTS


class SocketGroup:
    """Sockets that one task reads: ``readable`` is set when any may have a message."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.readable = asyncio.Event()
        self.writable = asyncio.Event()
        self._fds: dict[int, zmq.Socket] = {}  # type: ignore[type-arg]

    def add(self, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        fd = sock.getsockopt(zmq.FD)
        self._fds[fd] = sock
        self.loop.add_reader(fd, self._on_fd, sock)
        self._on_fd(sock)

    def _on_fd(self, sock: zmq.Socket) -> None:  # type: ignore[type-arg]
        if sock.closed:
            return
        events = sock.getsockopt(EVENTS)
        if events & POLLIN:
            self.readable.set()
        if events & POLLOUT:
            self.writable.set()

    def any_readable(self, socks: Iterable[zmq.Socket]) -> bool:  # type: ignore[type-arg]
        return any(not s.closed and s.getsockopt(EVENTS) & POLLIN for s in socks)

    async def wait_readable(self, socks: Iterable[zmq.Socket]) -> None:  # type: ignore[type-arg]
        """Return when one of ``socks`` has a message (re-checking after clearing: no lost edge)."""
        self.readable.clear()
        if self.any_readable(socks):
            return
        await self.readable.wait()

    async def send(self, sock: zmq.Socket, frames: list[bytes]) -> None:  # type: ignore[type-arg]
        """Send a multipart message; waits (never drops) while the socket is at its high-water mark."""
        while True:
            try:
                sock.send_multipart(frames, zmq.NOBLOCK, copy=len(frames[-1]) < 65536)
                return
            except zmq.Again:
                self.writable.clear()
                if sock.getsockopt(EVENTS) & POLLOUT:
                    continue
                await self.writable.wait()

    def remove_all(self) -> None:
        """Stop watching every socket (before closing them)."""
        for fd in self._fds:
            self.loop.remove_reader(fd)
        self._fds.clear()
        self.readable.set()  # wake a waiting reader so it sees the sockets are gone
