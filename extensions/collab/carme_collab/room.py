"""A room: one shared Yjs document and the peers editing it, speaking y-websocket's protocol.

Transport-agnostic: a :class:`Peer` is given a coroutine that sends one binary frame (its bytes, or
a tuple of its parts: :data:`protocol.Outgoing`); the websocket endpoint adapts a socket to it,
tests and benchmarks can use anything else. Each peer has its own outgoing queue drained by its
own task, so one slow client never holds up the others or the sender.

On join the server sends its SyncStep1 and the room's awareness states. A client's SyncStep1 is
answered with the updates it lacks; its updates are applied to the server's document, and every
change of the document (whoever made it: a client, the disk, server-side execution) is broadcast to
every peer but the one it came from and handed to the room's listeners (the update store, the disk
sync). Awareness messages are echoed to the sender (y-websocket clients reconnect after 30 s of
silence) and forwarded to the others when they change something. A read-only peer receives
everything and its document updates are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from pycrdt import Doc, Subscription, TransactionEvent

from . import protocol
from .awareness import Awareness
from .protocol import AWARENESS, EMPTY_STATE, RAW, SYNC, SYNC_STEP1, Frame, Outgoing, ProtocolError, outgoing_size

log = logging.getLogger("carme.collab.room")

Send = Callable[[Outgoing], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]
UpdateListener = Callable[[bytes], None]
SaveHandler = Callable[["Peer"], Awaitable[str]]

MAX_PENDING_BYTES = 256 * 1024 * 1024  # a client this far behind is disconnected, not buffered forever
FULL_STATE_KEPT_S = 2.0  # the encoded whole document outlives its last use this long (joiners come together)
FULL_STATE_KEPT_BYTES = 1 << 20  # ... when it is this big: a smaller one costs more memory than encoding time


class Peer:
    """One connected client: its outgoing queue, whether it may write, who it is."""

    def __init__(self, send: Send, close: Close | None = None, *, read_only: bool = False,
                 username: str = "", name: str = "") -> None:
        self.read_only = read_only
        self.username = username
        self.name = name or username
        self._send = send
        self._close = close
        self._queue: asyncio.Queue[Outgoing | None] = asyncio.Queue()
        self._pending = 0
        self._writer: asyncio.Task[None] | None = None
        self.closed = False
        self.overflowed = False

    def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    def push(self, frame: Outgoing) -> None:
        """Queue ``frame`` for this client (never blocks)."""
        if self.closed:
            return
        self._pending += outgoing_size(frame)
        if self._pending > MAX_PENDING_BYTES:
            log.warning("collab client %s is %d bytes behind; disconnecting it", self.username, self._pending)
            self.overflowed = True
            self.closed = True
            self._queue.put_nowait(None)
            return
        self._queue.put_nowait(frame)

    async def _drain(self) -> None:
        try:
            while (frame := await self._queue.get()) is not None:
                self._pending -= outgoing_size(frame)
                await self._send(frame)
        except Exception as exc:  # the socket went away: the receive side notices and leaves
            log.debug("collab client %s: send failed: %s", self.username, exc)
        self.closed = True
        if self.overflowed and self._close is not None:
            with contextlib.suppress(Exception):
                await self._close(1013, "too far behind")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send what is queued, then close the connection with ``code``."""
        await self.stop()
        if self._close is not None:
            with contextlib.suppress(Exception):
                await self._close(code, reason)

    async def stop(self) -> None:
        """Stop the writer once what is queued is sent (the connection is left as it is)."""
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer


class Room:
    """A shared document and its peers."""

    def __init__(self, room_id: str, ydoc: Doc | None = None) -> None:
        self.room_id = room_id
        self.ydoc = ydoc if ydoc is not None else Doc()
        self.peers: set[Peer] = set()
        self.awareness = Awareness()
        self.listeners: list[UpdateListener] = []
        self.on_save: SaveHandler | None = None
        self.dropped_updates = 0  # updates of read-only peers, dropped
        self._subscription: Subscription | None = self.ydoc.observe(self._on_transaction)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._origin: Peer | None = None  # the peer whose update is being applied
        # The whole document as updates, kept until the next change and for a moment after its
        # last use: the store's compaction and the clients joining with an empty document around
        # the same time share one encoding of it.
        self._full_state: tuple[bytes, ...] | None = None
        self._full_state_timer: asyncio.TimerHandle | None = None

    # -- membership ---------------------------------------------------------------------------

    def join(self, peer: Peer) -> None:
        """Add ``peer``: it gets the server's state vector and everybody's awareness."""
        peer.start()
        self.peers.add(peer)
        peer.push(protocol.sync_step1(self.ydoc.get_state()))
        states = self.awareness.snapshot()
        if states is not None:
            peer.push(protocol.awareness_frame(states))

    def leave(self, peer: Peer) -> None:
        """Remove ``peer`` and tell the others its awareness states are gone."""
        self.peers.discard(peer)
        gone = self.awareness.drop(peer)
        if gone is not None:
            self.broadcast(protocol.awareness_frame(gone))

    def broadcast(self, frame: bytes, exclude: Peer | None = None) -> None:
        for peer in self.peers:
            if peer is not exclude:
                peer.push(frame)

    def close(self) -> None:
        """Stop observing the document (the room is being dropped)."""
        if self._subscription is not None:
            self.ydoc.unobserve(self._subscription)
            self._subscription = None
        self._forget_full_state()

    @contextlib.contextmanager
    def unobserved(self) -> Iterator[None]:
        """Changes made inside reach no peer and no listener: loading a document before anyone
        joined. Observing a whole notebook's insertion would encode it once more for nothing."""
        if self._subscription is None:
            yield
            return
        self.ydoc.unobserve(self._subscription)
        try:
            yield
        finally:
            self._forget_full_state()
            self._subscription = self.ydoc.observe(self._on_transaction)

    def full_state(self) -> tuple[bytes, ...]:
        """The whole document as updates, in order: usually one; after a load from a file, the
        version the load built and the server's own changes after it (:meth:`loaded`). A big
        document is encoded once per version of it."""
        if self._full_state is None:
            update = self.ydoc.get_update()
            if len(update) < FULL_STATE_KEPT_BYTES:
                return (update,)
            self._full_state = (update,)
        self._keep_full_state()
        return self._full_state

    def loaded(self, built: bytes, built_state: bytes) -> None:
        """The document was just filled, unobserved, from ``built``: the encoding of the whole
        document it then was (state vector ``built_state``). Joiners and the store are given that
        encoding and the few changes made since, instead of an encoding of the whole document once
        more (for a 20 MB notebook ~20 ms of a cold join)."""
        if len(built) >= FULL_STATE_KEPT_BYTES:
            self._full_state = (built, self.ydoc.get_update(built_state))
            self._keep_full_state()

    def _keep_full_state(self) -> None:
        if self._full_state_timer is not None:
            self._full_state_timer.cancel()
        with contextlib.suppress(RuntimeError):  # no loop (a synchronous caller): kept until a change
            self._full_state_timer = asyncio.get_running_loop().call_later(FULL_STATE_KEPT_S,
                                                                           self._forget_full_state)

    def _forget_full_state(self) -> None:
        self._full_state = None
        if self._full_state_timer is not None:
            self._full_state_timer.cancel()
            self._full_state_timer = None

    # -- messages -----------------------------------------------------------------------------

    def receive(self, peer: Peer, data: bytes) -> None:
        """Handle one frame from ``peer``. A malformed frame is logged and ignored."""
        try:
            frame = protocol.parse(data)
        except ProtocolError as exc:
            log.warning("room %s: bad frame from %s: %s", self.room_id, peer.username, exc)
            return
        if frame.kind == SYNC:
            self._sync(peer, frame)
        elif frame.kind == AWARENESS:
            self._awareness(peer, data, frame.payload)
        elif frame.kind == RAW:
            self._raw(peer, frame)

    def _sync(self, peer: Peer, frame: Frame) -> None:
        if frame.sub == SYNC_STEP1:
            try:
                # A new client (empty state vector) needs everything: the shared encoding.
                first, *rest = self.full_state() if frame.payload == EMPTY_STATE else (
                    self.ydoc.get_update(frame.payload),)
            except Exception as exc:
                log.warning("room %s: bad state vector from %s: %s", self.room_id, peer.username, exc)
                return
            # A big answer is sent as its header and the update itself: no copy of the document.
            peer.push(protocol.sync_step2_parts(first) if len(first) >= FULL_STATE_KEPT_BYTES
                      else protocol.sync_step2(first))
            for update in rest:  # right behind it: nothing else is sent in between
                peer.push(protocol.sync_update(update))
            return
        if frame.payload == protocol.EMPTY_UPDATE:
            return
        if peer.read_only:
            self.dropped_updates += 1
            return
        self._origin = peer
        try:
            self.ydoc.apply_update(frame.payload)
        except Exception as exc:
            # A client whose history does not fit the server's (jupyter-collaboration answers the
            # same way): it is told, and its update is not merged.
            log.warning("room %s: update from %s does not apply (%s); telling it about the conflict",
                        self.room_id, peer.username, exc)
            peer.push(protocol.raw_frame({"type": "conflict"}))
        finally:
            self._origin = None

    def _awareness(self, peer: Peer, data: bytes, payload: bytes) -> None:
        try:
            changed = self.awareness.apply(payload, peer)
        except ProtocolError as exc:
            log.warning("room %s: bad awareness from %s: %s", self.room_id, peer.username, exc)
            return
        peer.push(data)  # the echo keeps y-websocket's connection alive
        if changed:
            self.broadcast(data, exclude=peer)

    def _raw(self, peer: Peer, frame: Frame) -> None:
        if frame.text != "save" or frame.save_id is None:
            return
        save_id = frame.save_id

        async def save() -> None:
            status = "failed"
            try:
                if self.on_save is not None:
                    status = await self.on_save(peer)
                else:
                    status = "skipped"
            except Exception:
                log.exception("room %s: save failed", self.room_id)
            peer.push(protocol.raw_frame({"type": "save", "responseTo": save_id, "status": status}))

        task = asyncio.get_running_loop().create_task(save())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_transaction(self, event: TransactionEvent) -> None:
        if self._full_state is not None:
            self._forget_full_state()
        update = event.update
        if update == protocol.EMPTY_UPDATE:
            return
        frame = protocol.sync_update(update)
        for peer in self.peers:
            if peer is not self._origin:
                peer.push(frame)
        for listener in self.listeners:
            listener(update)
