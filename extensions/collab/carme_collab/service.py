"""CollabService: the rooms of one app, published as ``server.services["collab"]``.

It hands out sessions (file id + epoch), opens a room on its first client (loading the document
from the store or the file), closes it ``cleanup_delay`` seconds after its last client left
(saving and compacting its history), keeps file ids in step with the contents API and the watch
extension, and gives server code the live documents (:meth:`CollabService.document`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pycrdt import Doc

from carme.errors import ApiError

from . import events, protocol
from .doctypes import BadRoomError, DocKind
from .document import Document, FileAccess
from .execution import CellExecutor
from .fileids import FileIds
from .room import Peer, Room
from .settings import CollabConfig
from .store import UpdateStore

if TYPE_CHECKING:
    from carme.auth import User
    from carme.server import Server

log = logging.getLogger("carme.collab")


class JoinRefused(Exception):
    """A client cannot join: close its websocket with ``code`` and ``reason`` (the anchor's codes)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class OpenRoom:
    """A room in memory: its document (None for transient awareness-only rooms) and epoch."""

    room: Room
    file_id: str | None = None
    kind: DocKind | None = None
    document: Document | None = None
    epoch: str = ""
    cleaner: asyncio.TimerHandle | None = None
    closing: asyncio.Task[Any] | None = field(default=None, repr=False)
    preloaded: bool = False  # opened for a session, nobody joined yet


def split_room_id(room_id: str) -> tuple[DocKind, str] | None:
    """(kind, file id) of a document room id ``FORMAT:TYPE:FILE_ID``; None for a transient room."""
    parts = room_id.split(":", 2)
    if len(parts) < 3:
        return None
    file_format, file_type, file_id = parts
    if not file_id:
        raise BadRoomError(f"room {room_id!r} names no file id")
    return DocKind.of(file_format, file_type), file_id


class CollabService:
    """Sessions, rooms, file ids and update history of one carme app."""

    def __init__(self, server: Server, config: CollabConfig) -> None:
        self.server = server
        self.config = config
        self.file_ids = FileIds(config.file_id_db, server.root_dir)
        self.store = UpdateStore(config.store_db, max_bytes=config.store_max_bytes,
                                 compact_after=config.compact_after)
        self.store.is_open = lambda room_id: room_id in self.rooms
        self.rooms: dict[str, OpenRoom] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.executor = CellExecutor(self)

    async def start(self) -> None:
        await self.file_ids.open()
        try:
            await self.store.open()
        except Exception:
            await self.file_ids.close()
            raise

    async def stop(self) -> None:
        """Save and close every room, then the databases."""
        await self.executor.close()
        for room_id in list(self.rooms):
            await self._close_room(room_id)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.close()
        await self.file_ids.close()

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sessions -----------------------------------------------------------------------------

    async def session(self, path: str, file_format: str, file_type: str) -> tuple[dict[str, Any], bool]:
        """The session of a document: ``({format, type, fileId, sessionId}, newly indexed)``.

        Raises ApiError 404 when there is no such file, 400 for a bad format or type.
        """
        try:
            kind = DocKind.of(file_format, file_type)
        except BadRoomError as exc:
            raise ApiError(400, str(exc), "Bad Request") from None
        model = await self.server.contents.get(path, content=False)
        if model["type"] == "directory":
            raise ApiError(400, f"{path} is a directory, not a document", "Bad Request")
        file_id, created = await self.file_ids.index(model["path"])
        room_id = f"{kind.format}:{kind.type}:{file_id}"
        open_room = self.rooms.get(room_id)
        epoch = open_room.epoch if open_room is not None else await self.store.epoch(room_id)
        if open_room is None:
            self._background(self._preload(room_id))
        return {"format": kind.format, "type": kind.type, "fileId": file_id, "sessionId": epoch}, created

    async def _preload(self, room_id: str) -> None:
        """Open the room of a session just handed out: its client joins next (JupyterLab and
        jupyter_nbmodel_client always do), so a big file loads while the client connects. A room
        nobody joins closes after ``cleanup_delay``; a load that fails is retried (and reported)
        by the join."""
        lock = self._locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            if room_id in self.rooms:
                return
            try:
                open_room = await self._open_room(room_id, split_room_id(room_id))
            except JoinRefused as refused:
                log.debug("room %s not preloaded: %s", room_id, refused.reason)
                return
            open_room.preloaded = True
        self._schedule_cleanup(room_id)

    async def _still_there(self, open_room: OpenRoom) -> None:
        """The first client of a preloaded room: its file may have gone since the session (the
        client is refused as if the room were loaded now)."""
        document = open_room.document
        if document is None or (document.path and await self.server.contents.file_exists(document.path)):
            return
        path = await document.access.locate()  # renamed meanwhile?
        if path is not None and await self.server.contents.file_exists(path):
            return
        await self._close_room(open_room.room.room_id)
        raise JoinRefused(protocol.CLOSE_NOT_FOUND, "Error initializing: the file of this room is gone")

    # -- joining and leaving ------------------------------------------------------------------

    async def join(self, room_id: str, peer: Peer, session_id: str | None, user: User | None) -> OpenRoom:
        """Put ``peer`` in ``room_id``, opening the room if needed; raises :class:`JoinRefused`."""
        try:
            parsed = split_room_id(room_id)
        except BadRoomError as exc:
            raise JoinRefused(protocol.CLOSE_BAD_REQUEST, str(exc)) from None
        lock = self._locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            open_room = self.rooms.get(room_id)
            if open_room is None:
                open_room = await self._open_room(room_id, parsed)
            elif open_room.preloaded:
                await self._still_there(open_room)
            open_room.preloaded = False
            if open_room.cleaner is not None:
                open_room.cleaner.cancel()
                open_room.cleaner = None
        if open_room.document is not None:
            if session_id and session_id != open_room.epoch:
                # The client's document comes from a history the server no longer has: merging it
                # would duplicate content. It reloads instead (JupyterLab shows a Reload dialog).
                self._schedule_cleanup(room_id)
                raise JoinRefused(protocol.CLOSE_RELOAD, protocol_reason("unknown_session", session_id))
            peer.read_only = not await self._can_write(user, open_room.document.path or "")
        open_room.room.join(peer)
        if user is not None and room_id != "JupyterLab:globalAwareness":
            self._emit_awareness(room_id, user.username, "join")
        return open_room

    def leave(self, open_room: OpenRoom, peer: Peer, username: str | None) -> None:
        open_room.room.leave(peer)
        if username is not None and open_room.room.room_id != "JupyterLab:globalAwareness":
            self._emit_awareness(open_room.room.room_id, username, "leave")
        if not open_room.room.peers:
            self._schedule_cleanup(open_room.room.room_id)

    async def _can_write(self, user: User | None, path: str) -> bool:
        if not await self.server.authorizer.allowed(user, "write", "contents", path):
            return False  # carme_permission: no write on this file, so no edits through the room either
        answer = self.server.hook.carme_collab_can_write(server=self.server, user=user, path=path)
        if answer is not None:
            return bool(answer)
        return user is None or user.username not in self.config.read_only_users

    async def _open_room(self, room_id: str, parsed: tuple[DocKind, str] | None) -> OpenRoom:
        if parsed is None:
            open_room = OpenRoom(Room(room_id))
            self.rooms[room_id] = open_room
            return open_room
        kind, file_id = parsed
        history = await self.store.load(room_id)
        # No history: the load builds the file's first version straight into the room's document,
        # whose client id is then that version's (0; see Document).
        room = Room(room_id, None if history.updates else Doc(client_id=0))
        access = FileAccess(
            contents=self.server.contents,
            locate=lambda: self.file_ids.get_path(file_id),
            before_write=self._before_write,
            matched=lambda disk_hash: self.store.set_disk_hash(room_id, disk_hash),
            report=lambda action, msg: self._emit_session(room_id, document.path or "", action, msg),
        )
        document = Document(room, kind, access, save_delay=self.config.save_delay)
        try:
            await document.load(history.updates, history.disk_hash)
        except ApiError as exc:
            room.close()
            code = {404: protocol.CLOSE_NOT_FOUND, 400: protocol.CLOSE_BAD_REQUEST}.get(exc.status,
                                                                                      protocol.CLOSE_SERVER_ERROR)
            raise JoinRefused(code, f"Error initializing: {exc.message}") from None
        except Exception as exc:
            room.close()
            log.exception("room %s failed to load", room_id)
            raise JoinRefused(protocol.CLOSE_RELOAD, protocol_reason("initialization_error", "", str(exc),
                                                                     reloadable=False)) from None
        open_room = OpenRoom(room, file_id, kind, document, history.epoch)
        if not history.updates or history.disk_hash != document.disk_hash:
            self.store.compact(room_id, room.full_state())  # the first joiner is sent the same bytes
        room.listeners.append(lambda update: self._stored(open_room, update))
        room.on_save = document.save_request
        self.rooms[room_id] = open_room
        self._emit_session(room_id, document.path or "", "initialize", "Room initialized")
        return open_room

    async def _before_write(self, path: str, model: dict[str, Any]) -> None:
        await self.store.flush()  # the history reaches the store before the file it leads to
        if model.get("type") in ("notebook", "file"):
            await self.server.notify("carme_before_save", path=path, model=model)

    def _stored(self, open_room: OpenRoom, update: bytes) -> None:
        room_id = open_room.room.room_id
        if self.store.append(room_id, update):
            # Not inside the document's transaction: take the whole state right after it.
            asyncio.get_running_loop().call_soon(self._compact, open_room)

    def _compact(self, open_room: OpenRoom) -> None:
        if self.rooms.get(open_room.room.room_id) is open_room:
            self.store.compact(open_room.room.room_id, open_room.room.full_state())

    # -- closing ------------------------------------------------------------------------------

    def _schedule_cleanup(self, room_id: str) -> None:
        open_room = self.rooms.get(room_id)
        if open_room is None or open_room.room.peers or open_room.cleaner is not None:
            return
        delay = 0.0 if open_room.document is None else self.config.cleanup_delay
        if delay is None:
            return
        loop = asyncio.get_running_loop()
        open_room.cleaner = loop.call_later(delay, lambda: self._background(self._cleanup(room_id)))

    async def _cleanup(self, room_id: str) -> None:
        lock = self._locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            open_room = self.rooms.get(room_id)
            if open_room is None or open_room.room.peers:
                return
            await self._close_room(room_id)
            self._locks.pop(room_id, None)

    async def _close_room(self, room_id: str) -> None:
        open_room = self.rooms.pop(room_id, None)
        if open_room is None:
            return
        if open_room.cleaner is not None:
            open_room.cleaner.cancel()
        for peer in list(open_room.room.peers):
            await peer.close(1001, "server shutting down")
        if open_room.document is not None:
            try:
                await open_room.document.close()
                self.store.compact(room_id, open_room.room.full_state())
                await self.store.flush()
            except Exception:
                log.exception("closing room %s failed", room_id)
            self._emit_session(room_id, open_room.document.path or "", "clean", "Room deleted")
        open_room.room.close()

    # -- files changing -----------------------------------------------------------------------

    def documents_of(self, file_id: str) -> list[Document]:
        return [r.document for r in self.rooms.values() if r.file_id == file_id and r.document is not None]

    async def contents_changed(self, action: str, path: str, source_path: str | None) -> None:
        """The contents API changed ``path`` (from ``carme_on_contents_changed``)."""
        if action == "rename" and source_path is not None:
            await self.file_ids.moved(source_path, path)
            for open_room in list(self.rooms.values()):
                if open_room.document is not None:
                    self._background(open_room.document.path_changed())
        elif action == "delete":
            await self.file_ids.deleted(path)
        elif action in ("save", "upload"):
            await self.file_ids.refresh(path)
            file_id = await self.file_ids.get_id(path)
            if file_id is not None:
                for document in self.documents_of(file_id):
                    self._background(document.disk_changed())

    async def files_changed(self, changes: Iterable[Any]) -> None:
        """The watch extension saw files change (``carme_watch.Change`` objects)."""
        items = [(c.change, c.path, c.old_path) for c in changes]
        moved = await self.file_ids.sync_changes(items)
        for file_id, _path in moved:
            for document in self.documents_of(file_id):
                self._background(document.path_changed())
        if not self.rooms:
            return
        for kind, path, _old in items:
            if kind not in ("added", "modified"):
                continue
            file_id = await self.file_ids.get_id(path)
            if file_id is not None:
                for document in self.documents_of(file_id):
                    self._background(document.disk_changed())

    # -- Python API ---------------------------------------------------------------------------

    async def document(self, path: str, file_type: str = "notebook", file_format: str = "json") -> Document:
        """The live document of ``path`` (its room opened if needed; it closes after
        ``cleanup_delay`` unless a client joins). ``document.doc`` is the jupyter_ydoc document."""
        session, _created = await self.session(path, file_format, file_type)
        room_id = f"{session['format']}:{session['type']}:{session['fileId']}"
        return await self.document_by_room(room_id)

    async def document_by_room(self, room_id: str) -> Document:
        """The live document of a room id (``json:notebook:FILE_ID``); opens it if needed."""
        open_room = self.rooms.get(room_id)
        if open_room is None:
            lock = self._locks.setdefault(room_id, asyncio.Lock())
            async with lock:
                open_room = self.rooms.get(room_id)
                if open_room is None:
                    open_room = await self._open_room(room_id, split_room_id(room_id))
            self._schedule_cleanup(room_id)
        if open_room.document is None:
            raise KeyError(f"room {room_id} holds no document")
        return open_room.document

    # -- events -------------------------------------------------------------------------------

    def _emit_session(self, room_id: str, path: str, action: str, msg: str) -> None:
        # Always INFO, a conflict too: JupyterLab's docprovider shows its modal "opened with two
        # different views" warning for every WARNING of this schema (the anchor's rooms report INFO and
        # ERROR only), which would stand in front of, or after, the conflict's own dialog.
        self.server.events.emit(events.SESSION, {"level": "INFO", "room": room_id, "path": path,
                                                 "action": action, "msg": msg})

    def _emit_awareness(self, room_id: str, username: str, action: str) -> None:
        self.server.events.emit(events.AWARENESS, {"roomid": room_id, "username": username, "action": action})


def protocol_reason(reason: str, session_id: str, error: str | None = None, *, reloadable: bool = True) -> str:
    """The JSON close reason JupyterLab's provider reads on close code 1003."""
    data: dict[str, Any] = {"reason": reason, "sessionId": session_id, "reloadable": reloadable}
    if error:
        data["errorReason"] = error
    return json.dumps(data)
