"""One terminal: its pty process, the browsers attached to it, and the flow of bytes between them.

Transport-agnostic: a browser is a :class:`Sink` (send a text frame, close), so the websocket
endpoint only adapts ASGI to it. Messages are terminado's JSON arrays.

Flow control, both ways:

- Output: the pty is read on the event loop, one read per wake-up (so a flooding program
  shares the loop fairly with everything else). Each browser has its own queue of output not
  yet sent: an echo, a prompt or a full read of a flood goes at once, other output of a burst
  is batched into ``stdout`` messages of up to 64 KiB, none held more than 2 ms (see
  :class:`Attachment`). When a browser's queue holds ``client_buffer_chars``, the terminal
  stops reading the pty until every queue is below half of it: the kernel's pty buffer fills
  and the program writing blocks, so a slow browser makes the terminal wait and the server
  never holds more than that per browser. (The sends themselves
  wait on the websocket's own flow control, so a browser that does not read fills its queue.)
- Input: written to the pty without a thread; when the pty does not take it (a program not
  reading its input while a big paste arrives), the rest waits for the fd to be writable, and the
  websocket is not read again until it has gone below ``INPUT_LIMIT``.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Literal, Protocol

from carme.jsonutil import dumps, isoformat, utcnow

from .eager import start_now
from .process import PtyProcess, set_size
from .replay import ReplayBuffer

log = logging.getLogger("carme.terminals")

READ_SIZE = 65536  # terminado's read size too (a pty hands out at most ~4 KiB a read anyway)
# Output batching (see Attachment): what counts as a small chunk (a keystroke's echo, a prompt),
# what counts as a full read (the pty had more than we took: its writer is ahead and waits),
# how long later output may wait to join a message (far below a screen refresh), and the size
# at which a message goes at once.
SMALL_CHARS = 256
FULL_READ = 2048
FLUSH_DELAY = 0.002
FRAME_CHARS = 65536
INPUT_LIMIT = 1 << 20
SETUP = '["setup",{}]'
DISCONNECT = '["disconnect",1]'
DEFAULT_SIZE = (24, 80)

State = Literal["running", "ending", "ended"]


class Sink(Protocol):
    """Where a browser's messages go: a websocket, as the endpoint adapts it."""

    def send_nowait(self, frame: str) -> bool:
        """Write ``frame`` at once and return True if that needs no wait; else write nothing and
        return False (then :meth:`send` it)."""
        ...

    async def send(self, frame: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


def stdout_message(text: str) -> str:
    return dumps(["stdout", text]).decode()


class Attachment:
    """One browser on a terminal: the output waiting for it and the task sending it.

    Output is batched by when and how it comes. A chunk arriving while nothing is queued and the
    sender is idle is sent right there, in the pty's read callback, if it is small (under
    ``SMALL_CHARS``: a keystroke's echo, a prompt, so typing stays as fast as the pty) or a full
    read (``FULL_READ`` or more: the pty had more than was taken, so its writer is ahead of us
    and waits; the next read finds the pty refilled while this one is sent, where reading on at
    once would wait for the kernel to refill it, see :meth:`Terminal._read`). Other output (a
    program writing a line at a time, a long listing) wakes the sender at once if nothing was
    sent for ``FLUSH_DELAY`` (the first chunk of a burst), else waits until ``FRAME_CHARS`` are
    queued or ``FLUSH_DELAY`` after the last message, and goes as one message. Once a send has
    to wait for the websocket, everything queues behind it and goes in messages of up to
    ``FRAME_CHARS``: a client that cannot keep up gets fewer, larger messages.

    A direct send goes through the sink's ``send_nowait``; when the websocket would make it wait,
    through ``send`` started in the callback (:func:`~carme_terminals.eager.start_now`), and the
    sender waits for it.
    """

    def __init__(self, terminal: Terminal, sink: Sink) -> None:
        self.terminal = terminal
        self.sink = sink
        self.size: tuple[int, int] | None = None
        self.pending = 0  # characters queued or being sent
        self._chunks: list[str] = []
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._last_send = -FLUSH_DELAY  # loop time the last stdout message was taken from the queue
        self._ending = False
        self._idle = False  # the sender waits with nothing queued: a small chunk may go directly
        self._direct: asyncio.Task[None] | None = None  # a direct send that had to wait
        self.gone = False  # its websocket failed: nothing more is queued for it
        self.task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    def push(self, text: str) -> None:
        if self.gone:
            return
        if (len(text) < SMALL_CHARS or len(text) >= FULL_READ) and self._idle and self._direct is None \
                and not self._chunks:
            self._send_direct(text)
            return
        self._chunks.append(text)
        self.pending += len(text)
        if self._wake.is_set():
            return
        loop = self._loop
        if (self.pending >= FRAME_CHARS or len(self._chunks) == 1
                and (len(text) < SMALL_CHARS or loop.time() - self._last_send >= FLUSH_DELAY)):
            self._flush_now()
        elif self._timer is None:
            self._timer = loop.call_at(self._last_send + FLUSH_DELAY, self._flush_now)

    def _send_direct(self, text: str) -> None:
        self._last_send = self._loop.time()
        frame = stdout_message(text)
        if self.sink.send_nowait(frame):
            return
        try:
            task = start_now(self.sink.send(frame))
        except Exception as exc:
            self._failed(exc)
            return
        if task is not None:  # the websocket makes it wait: the sender waits for it too
            self.pending += len(text)
            self._direct = task
            task.add_done_callback(lambda task: self._direct_done(task, len(text)))

    def _direct_done(self, task: asyncio.Task[None], size: int) -> None:
        self._direct = None
        self.pending -= size
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._failed(exc)
        else:
            self.terminal.drained()

    def _failed(self, exc: BaseException) -> None:
        """The websocket is gone; the endpoint detaches it."""
        log.debug("terminal %s: a browser's websocket failed: %r", self.terminal.name, exc)
        self.gone = True
        self._chunks.clear()
        self.pending = 0
        self.terminal.drained()

    def _flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake.set()

    def end(self) -> None:
        """The terminal is gone: send what is queued, then ``disconnect``, then close."""
        self._ending = True
        self._flush_now()

    async def run(self, replay: str) -> None:
        sink = self.sink
        try:
            await sink.send(SETUP)  # JupyterLab drops everything before it
            if replay:
                await sink.send(stdout_message(replay))
            while True:
                self._idle = not self._chunks
                await self._wake.wait()
                self._idle = False
                self._wake.clear()
                if self._direct is not None:  # what went directly goes first
                    await asyncio.wait((self._direct,))
                    if self.gone:
                        return
                if self._chunks:
                    text = self._chunks[0] if len(self._chunks) == 1 else "".join(self._chunks)
                    self._chunks.clear()
                    self._last_send = self._loop.time()
                    await sink.send(stdout_message(text))
                    self.pending -= len(text)
                    self.terminal.drained()
                if self._ending and not self._chunks:
                    await sink.send(DISCONNECT)
                    await sink.close(1000, "the terminal's process exited")
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
        finally:
            self._idle = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    async def stop(self) -> None:
        """Stop sending (the browser left)."""
        for task in (self.task, self._direct):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


class Terminal:
    """A named terminal: ``process`` on its pty, any number of attached browsers.

    ``on_end`` is called once when the terminal has ended (its program exited or it was deleted).
    ``on_activity`` on input and output (the server's activity clock).
    """

    def __init__(self, name: str, process: PtyProcess, *, replay_chars: int, client_buffer_chars: int,
                 on_end: Callable[[Terminal], None], on_activity: Callable[[], None] = lambda: None) -> None:
        self.name = name
        self.process = process
        self.replay = ReplayBuffer(replay_chars)
        self.high_water = client_buffer_chars
        self.clients: set[Attachment] = set()
        self.last_activity: datetime = utcnow()
        self.state: State = "running"
        self.paused = False  # not reading the pty: a browser's queue is full
        self.bytes_read = 0
        self.size = DEFAULT_SIZE
        self._on_end = on_end
        self._on_activity = on_activity
        # Keeps the start of a UTF-8 character a read cut in two for the next read.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._touch_due = 0.0  # loop time after which output counts as activity again
        self._loop = asyncio.get_running_loop()
        self._input = bytearray()
        self._writing = False
        self._input_room = asyncio.Event()
        self._eof = False

    def start(self) -> None:
        self._loop.add_reader(self.process.fd, self._readable)
        self.process.on_exit(self._exited)

    def model(self) -> dict[str, str]:
        """The REST model, as jupyter_server_terminals: name and last activity."""
        return {"name": self.name, "last_activity": isoformat(self.last_activity)}

    def _touch(self) -> None:
        self.last_activity = utcnow()
        self._on_activity()

    def _output_activity(self) -> None:
        # Output counts as activity at most once a second: a flood reads the pty thousands of
        # times a second, and culling and the REST model need no finer clock than that.
        now = self._loop.time()
        if now >= self._touch_due:
            self._touch_due = now + 1.0
            self._touch()

    # -- output --------------------------------------------------------------------------------

    def _readable(self) -> None:
        data, eof = self._read()
        full = bool(data) and self._output(data)
        if eof:
            self._at_eof()
        elif full:
            self.paused = True
            self._loop.remove_reader(self.process.fd)

    def _read(self) -> tuple[bytes, bool]:
        """One read of what the pty has now, and whether it is at its end.

        One read per wake-up, never reading on at once: a pty hands out at most ~4 KiB a read
        (its line discipline's buffer), and what the writer left beyond it (about 20 KiB on
        Linux) is moved in by a kernel worker that the read itself starts. A read right after
        finds that worker still running and waits for it (even on a non-blocking fd), so a loop
        of reads is a wake-up chain of ~4 KiB each; a read, then this read's output sent, then
        the next read finds the buffer refilled while we sent (measured on `cat` of 50 MB: ~100
        MB/s against ~65 reading on up to 64 KiB per wake-up).
        """
        try:
            data = os.read(self.process.fd, READ_SIZE)
        except BlockingIOError:
            return b"", False
        except OSError:  # EIO: no process holds the pty any more
            return b"", True
        return data, not data

    def _output(self, data: bytes) -> bool:
        """Give ``data`` to the replay buffer and every browser; whether a browser's queue is full."""
        self.bytes_read += len(data)
        text = self._decoder.decode(data)
        if not text:
            return False
        self.replay.append(text)
        self._output_activity()
        full = False
        for client in self.clients:
            client.push(text)
            full = full or client.pending >= self.high_water
        return full

    def drained(self) -> None:
        """A browser's queue shrank (or it left): read the pty again once every queue is low."""
        if self.paused and self.state == "running" and all(c.pending < self.high_water // 2 for c in self.clients):
            self.paused = False
            self._loop.add_reader(self.process.fd, self._readable)

    def _at_eof(self) -> None:
        self._eof = True
        self._loop.remove_reader(self.process.fd)
        if self.process.exited and self.state == "running":
            self._end()

    def _exited(self, returncode: int) -> None:
        log.info("terminal %s: %s exited with %s", self.name, self.process.proc.args, returncode)
        if self.state == "ended":
            return
        # What the program wrote last is still in the pty: deliver it before the disconnect.
        while not self._eof and self.process.fd >= 0:
            data, eof = self._read()
            if data:
                self._output(data)
            if eof or not data:
                break
        if self.state == "running":  # else terminate() ends it once the whole session is gone
            self._end()

    def _end(self) -> None:
        if self.state == "ended":
            return
        self.state = "ended"
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self.process.fd)
        if self._writing:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(self.process.fd)
        self.process.close()
        tail = self._decoder.decode(b"", final=True)
        for client in self.clients:
            if tail:
                client.push(tail)
            client.end()
        self._input.clear()
        self._input_room.set()
        self._on_end(self)

    # -- input ---------------------------------------------------------------------------------

    async def write(self, text: str) -> None:
        """Type ``text`` into the terminal; returns once the pending input is below INPUT_LIMIT."""
        if self.state != "running":
            return
        self._touch()
        self._input += text.encode("utf-8", errors="replace")
        self._flush()
        while len(self._input) >= INPUT_LIMIT and self.state == "running":
            self._input_room.clear()
            await self._input_room.wait()

    def _flush(self) -> None:
        while self._input and self.process.fd >= 0:
            try:
                written = os.write(self.process.fd, self._input)
            except BlockingIOError:
                break
            except OSError:  # the pty is gone; the exit handling ends the terminal
                self._input.clear()
                break
            del self._input[:written]
        if self._input and not self._writing:
            self._writing = True
            self._loop.add_writer(self.process.fd, self._flush)
        elif not self._input and self._writing:
            self._writing = False
            self._loop.remove_writer(self.process.fd)
        if len(self._input) < INPUT_LIMIT:
            self._input_room.set()

    # -- browsers ------------------------------------------------------------------------------

    def attach(self, sink: Sink) -> Attachment:
        """Add a browser: it gets ``setup``, the recent output, then everything new (nothing is
        lost or repeated between the two: the snapshot and the registration happen together)."""
        client = Attachment(self, sink)
        replay = self.replay.text()
        self.clients.add(client)
        client.task = asyncio.ensure_future(client.run(replay))
        if self.state != "running":
            client.end()
        return client

    async def detach(self, client: Attachment) -> None:
        self.clients.discard(client)
        await client.stop()
        self._apply_size()
        self.drained()

    def resize(self, client: Attachment, rows: int, cols: int) -> None:
        """A browser's size; the pty takes the smallest rows and columns of all (as terminado)."""
        client.size = (rows, cols)
        self._apply_size()

    def _apply_size(self) -> None:
        sizes = [client.size for client in self.clients if client.size is not None]
        if not sizes or self.state != "running":
            return
        size = (min(rows for rows, _ in sizes), min(cols for _, cols in sizes))
        if size != self.size:
            self.size = size
            with contextlib.suppress(OSError):
                set_size(self.process.fd, *size)

    # -- ending --------------------------------------------------------------------------------

    async def terminate(self) -> None:
        """End the terminal's whole session (see :mod:`carme_terminals.process`) and the terminal."""
        if self.state == "ended":
            return
        self.state = "ending"
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self.process.fd)
        await self.process.kill_session()
        self.process.poll()
        self._end()
