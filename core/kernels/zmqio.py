"""Reading and writing a handful of ZMQ sockets from asyncio without a future per message.

zmq.asyncio creates a future (and a loop callback) for every recv. The relay instead watches
each socket's file descriptor once (``loop.add_reader``) and drains queued messages with
non-blocking receives. A zmq FD signals that the socket's state may have changed; reading
``ZMQ_EVENTS`` (or a receive that finds nothing) re-arms it. So: the FD callback reads
``ZMQ_EVENTS`` once and marks the socket ready; the reader receives until ``EAGAIN`` and then
marks it not ready; a message arriving after that signals the FD again. A socket whose messages
are not being read (a slow client) does not spin the loop: ZMQ only signals the FD when a pipe
goes from empty to non-empty.

A send takes that signal too: it processes the socket's pending commands, among them "a message
arrived", and the FD is not signalled again for it (ZMQ's documentation: after ``zmq_send`` the
socket may become readable without a read event on the FD). So after sending on a watched socket
the group reads ``ZMQ_EVENTS`` itself (:meth:`SocketGroup.send` does; :meth:`SocketGroup.sent`
after a send made some other way). Without that, a reply that arrived while a client sent its next
request stayed unread: a JupyterLab page waited forever for kernel_info.

A group may be *paced* (the kernel's iopub reader is): while messages stream in faster than
:data:`STREAM_RATE` per second (a kernel printing line by line), a message found on a socket
wakes the reader :data:`PACE` seconds later (a timer, not the loop's next turn), so one wake-up
reads the several messages that came meanwhile instead of one. Each message costs the server a wake-up of the
event loop and of ZMQ's I/O thread's signal to it, more than the message itself; round trips
(a few messages per request) stay under the rate and are never held. A streaming group goes on
pacing while the rate stays above :data:`CALM_RATE` (a kernel printing at about the threshold,
slowed by a busy machine, would otherwise flip in and out of pacing, a wake-up per message each
time it is out) until the rate falls below it or its reader says the stream is over
(:meth:`SocketGroup.calm`: the kernel went idle), so round trips after a stream are not held.

pyzmq's flag constants are enum members, and ``int & flag`` builds a new enum object each time;
the hot path uses plain ints.
"""

from __future__ import annotations

import asyncio
from typing import Any

import zmq

POLLIN = int(zmq.POLLIN)
POLLOUT = int(zmq.POLLOUT)
EVENTS = int(zmq.EVENTS)
NOBLOCK = int(zmq.NOBLOCK)
FD = int(zmq.FD)

Socket = zmq.Socket[Any]

STREAM_RATE = 2000.0  # messages per second over a window above which a paced group is streaming
CALM_RATE = 500.0  # ... and below which a streaming one is not any more
STREAM_WINDOW = 0.02  # seconds: how often the rate is looked at
PACE = 0.010  # seconds from a streaming message to the wake-up that reads it (output 10 ms later at most)


def monitor_socket(sock: Socket, events: int) -> Socket:
    """A plain PAIR socket receiving ``sock``'s monitor ``events`` (close it, and call
    ``sock.disable_monitor()``, when done). pyzmq's ``get_monitor_socket`` makes it with the
    class of the context, an asyncio one when the context is ``zmq.asyncio``'s."""
    address = f"inproc://monitor.s-{sock.FD}"
    sock.monitor(address, events)
    pair = sock.context.socket(zmq.PAIR, socket_class=zmq.Socket)
    pair.connect(address)
    return pair


class SocketGroup:
    """Sockets that one task reads; :meth:`wait` returns when one of them may have a message."""

    def __init__(self, loop: asyncio.AbstractEventLoop, paced: bool = False) -> None:
        self.loop = loop
        self.paced = paced
        self.received = 0  # messages received since the window began
        self._window = 0.0  # when it began
        self._streaming = False
        self._timer: asyncio.TimerHandle | None = None  # a paced wake-up on its way
        self.ready: set[Socket] = set()
        self._wake = asyncio.Event()
        self._writable = asyncio.Event()
        self._fds: list[int] = []

    def add(self, sock: Socket) -> None:
        fd = sock.get(FD)
        self._fds.append(fd)
        self.loop.add_reader(fd, self._on_fd, sock)
        self.ready.add(sock)  # look once: messages may have arrived before the watch began
        self._wake.set()

    def _on_fd(self, sock: Socket) -> None:
        if not sock.closed:
            self._look(sock)

    def _look(self, sock: Socket) -> None:
        """Read the socket's ``ZMQ_EVENTS`` (which re-arms its FD) and note what they say."""
        events = sock.get(EVENTS)
        if events & POLLIN:
            self.ready.add(sock)
            if self.paced and self._streaming_now():
                if self._timer is None:
                    self._timer = self.loop.call_later(PACE, self._paced_wake)
            else:
                self._wake.set()
        if events & POLLOUT:
            self._writable.set()

    def recv(self, sock: Socket) -> list[bytes] | None:
        """One multipart message from ``sock``, or None when it has none; either way ``sock``
        stays in :attr:`ready` only while another message may be queued (read it while it is)."""
        try:
            frame = sock.recv(NOBLOCK, copy=False)
        except zmq.Again:
            self.ready.discard(sock)
            return None
        parts = [frame.bytes]
        while frame.more:
            frame = sock.recv(NOBLOCK, copy=False)
            parts.append(frame.bytes)
        self.received += 1
        # An unpaced group (a client's request sockets: a reply or two per wake-up) asks whether
        # more is queued (which re-arms the FD, as _look does) rather than let the next receive
        # find nothing: zmq.Again costs more than the question. A paced group reads several
        # messages per wake-up and asking after each costs a poll and a getpid system call in
        # libzmq every time: it receives until zmq.Again, once per wake-up.
        if not self.paced and not sock.get(EVENTS) & POLLIN:
            self.ready.discard(sock)
        return parts

    def discard(self, sock: Socket) -> None:
        """Drop whatever ``sock`` has queued (replies to a transient request)."""
        while self.recv(sock) is not None:
            pass

    async def wait(self) -> None:
        """Return once a socket is ready (at once if one is), or :meth:`wake` is called."""
        self._wake.clear()
        if self.ready:
            return
        await self._wake.wait()

    def _streaming_now(self) -> bool:
        """Whether messages stream in (see the module docstring), looked at once per window."""
        now = self.loop.time()
        elapsed = now - self._window
        if elapsed >= STREAM_WINDOW:
            self._streaming = self.received >= (CALM_RATE if self._streaming else STREAM_RATE) * elapsed
            self._window, self.received = now, 0
        return self._streaming

    def _paced_wake(self) -> None:
        self._timer = None
        self._wake.set()

    def calm(self) -> None:
        """The stream is over (the kernel went idle): no pacing until the rate is high again."""
        if self._streaming:
            self._streaming = False
            self._window, self.received = self.loop.time(), 0

    def wake(self) -> None:
        """Make :meth:`wait` return (new work that is not a socket, e.g. a queued message)."""
        self._wake.set()

    async def send(self, sock: Socket, frames: list[bytes]) -> None:
        """Send a multipart message; waits (never drops) while the socket is at its high-water mark."""
        while True:
            try:
                sock.send_multipart(frames, NOBLOCK, copy=len(frames[-1]) < 65536)
            except zmq.Again:
                self._writable.clear()
                self._look(sock)
                if not self._writable.is_set():
                    await self._writable.wait()
                continue
            self.sent(sock)
            return

    def sent(self, sock: Socket) -> None:
        """Call after sending on a watched socket other than with :meth:`send` (a send may have
        taken the FD's signal of a message that arrived: see the module docstring)."""
        self._look(sock)

    def remove_all(self) -> None:
        """Stop watching every socket (before closing them)."""
        for fd in self._fds:
            self.loop.remove_reader(fd)
        self._fds.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.ready.clear()
        self._wake.set()  # wake a waiting reader so it sees the sockets are gone
