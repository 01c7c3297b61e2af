"""A collaborative document and its file: load on first join, debounced save, out-of-band changes.

What jupyter-collaboration loses, this keeps:

- **No silent overwrite.** Before every save the file's hash is compared with the hash of the
  version the document last matched (loaded, saved or merged). A file changed on disk meanwhile,
  while the document has edits not saved yet, is a *conflict*: the save is not made, clients get
  RAW ``{"type": "conflict"}`` (JupyterLab's Edit Conflict dialog), and only an explicit save from a
  client after that (Ctrl+S: the user saw the dialog) overwrites it. A document whose content
  equals the disk's (the user reverted) just adopts the disk version.
- **Out-of-band changes merged, not reloaded.** A change seen on disk (watch events, or at save
  time) with a new hash is applied with jupyter_ydoc's granular ``set``: unchanged cells are left
  alone (their outputs, their Yjs items, the clients' cursors in them), changed ones are updated in
  place. A write that does not change the bytes (``touch``, our own save) changes nothing.
- **Deterministic first load.** A document built from the file alone is built in a
  ``Doc(client_id=0)`` (the room's: the room of a file loaded from disk has that client id), so
  building it twice from the same file gives the same Yjs history. The server's own changes after
  it are client 0's too; that never makes two histories with different client-0 items meet in a
  client, because a document rebuilt from the file always comes with a new epoch (the
  ``sessionId``): a client holding the old history reloads instead of merging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pycrdt import Doc

from carme.errors import ApiError

from . import protocol
from .doctypes import DocKind, LeanNotebook
from .room import Peer, Room

log = logging.getLogger("carme.collab.document")

SaveStatus = Literal["success", "skipped", "failed"]


@dataclass
class FileAccess:
    """What a document needs from the server: the contents manager and a few callbacks."""

    contents: Any  # carme.contents.manager.ContentsManager
    locate: Callable[[], Awaitable[str | None]]  # the file's current path (it follows renames)
    before_write: Callable[[str, dict[str, Any]], Awaitable[None]]  # store flush, carme_before_save
    matched: Callable[[str | None], None]  # the disk hash the document now matches (recorded in order)
    report: Callable[[str, str], None]  # (action, message): load, save, overwrite, conflict


class FirstVersion:
    """The document of a file's content built from nothing. Deterministic (client id 0): built
    twice from the same file it is the same Yjs history, so a client holding the one merges cleanly
    into the other. CPU work on a document of its own: run its methods on a worker thread.

    ``ydoc``: build into this empty ``Doc(client_id=0)`` (a room's, so that the version needs no
    apply to get there) instead of a new one."""

    def __init__(self, kind: DocKind, content: Any, ydoc: Doc | None = None) -> None:
        self.ydoc = Doc(client_id=0) if ydoc is None else ydoc
        if self.ydoc.client_id != 0 or self.ydoc.get_state() != protocol.EMPTY_STATE:
            raise ValueError("a first version is built into an empty document of client id 0")
        self.document = kind.new_document(self.ydoc, lean=True)
        self.document.set(content)  # reads ``content`` only

    def mark_trusted(self, trusted: bool) -> None:
        """Give the code cells the ``metadata.trusted`` the contents API gives them."""
        if isinstance(self.document, LeanNotebook):
            self.document.mark_trusted(trusted)

    def encode(self) -> bytes:
        """The whole version as one update."""
        return self.ydoc.get_update()


class Document:
    """The disk side of one room."""

    def __init__(self, room: Room, kind: DocKind, access: FileAccess, *, save_delay: float | None) -> None:
        self.room = room
        self.kind = kind
        self.access = access
        self.save_delay = save_delay
        self.doc = kind.new_document(room.ydoc)
        self.path: str | None = None
        self.disk_hash: str | None = None
        self.unsaved = False  # edits made since the document last matched the file
        self.conflict_hash: str | None = None  # the disk version reported as a conflict
        self.saves = 0
        self._changes = 0  # edits counter: a save only clears `unsaved` when none came meanwhile
        self._applying = False  # the server itself is changing the document (load, merge, state)
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._task: asyncio.Task[Any] | None = None

    # -- loading ------------------------------------------------------------------------------

    async def load(self, history: list[bytes], stored_hash: str | None) -> None:
        """Fill the document: from the stored ``history`` when there is one (merging the file in
        if it changed on disk since ``stored_hash``), else from the file, deterministically.

        Raises :class:`carme.errors.ApiError` (404 when the file is gone, ...).
        """
        path = await self.access.locate()
        if path is None:
            raise ApiError(404, "the file of this room is not known any more", "Not Found")
        self.path = path
        # Not validated: the room never reports the schema message (nor does the anchor's); a
        # file that is no notebook still fails the load with a 400. A first load reads no trust
        # flags: the check runs beside the build (:meth:`_fill`; a 20 MB notebook's HMAC ~18 ms).
        model = await self.access.contents.get(path, content=True, type=self.kind.contents_type,
                                               format=self.kind.read_format(), require_hash=True,
                                               validate=False, mark_trusted=bool(history))
        content = self.kind.from_model(model)
        built: tuple[bytes, bytes] | None = None
        async with self._lock:
            # Nobody has joined yet: no change of the load is observed (each observer would
            # encode or convert the whole document once more); the document is observed after.
            with self._server_change(), self.room.unobserved():
                if history:
                    for update in history:
                        self.room.ydoc.apply_update(update)
                    if model["hash"] != stored_hash and await self._differs(content):
                        self.access.report("overwrite", "the file changed on disk while the room was closed; merged")
                        await self._set(content)
                    elif stored_hash is not None and await self._differs(content):
                        self.unsaved = True  # edits the store kept but the file has not seen yet
                    self.access.report("load", "content loaded from the store")
                else:
                    # On a worker thread (the loop stays free for the other rooms): nothing else
                    # touches this document until the load is over.
                    built = await asyncio.to_thread(self._fill, content)
                    self.access.report("load", "content loaded from disk")
                self.disk_hash = model["hash"]
                self._set_state(path=path, dirty=self.unsaved, hash=model["hash"])
            if built is not None:
                self.room.loaded(*built)  # the first joiners get the built encoding, not a new one
            self.doc.observe(self._on_change)
        self.access.matched(self.disk_hash)
        if self.unsaved:
            self._schedule()

    def _fill(self, content: Any) -> tuple[bytes, bytes]:
        """Fill the empty document with the first version of ``content`` (read without trust
        flags: they are set on the built cells, the check's HMAC running on the notary's thread
        meanwhile); returns that version's encoding and the document's state vector after it."""
        notebook = self.kind.type == "notebook" and isinstance(content, dict)
        checked = self.access.contents.trust_check(content) if notebook else None
        # Built in the room's own document (client id 0, see CollabService._open_room): no copy of
        # it to apply (a 20 MB notebook's ~16 ms).
        version = FirstVersion(self.kind, content, self.room.ydoc)
        if checked is not None:
            version.mark_trusted(checked.result())
        return version.encode(), self.room.ydoc.get_state()

    async def _differs(self, content: Any) -> bool:
        return bool(await self.doc.aget() != content)

    async def _set(self, content: Any) -> None:
        await self.doc.aset(content)

    def _set_state(self, **values: Any) -> None:
        with self._server_change():
            state = self.doc.ystate
            for key, value in values.items():
                if value is not None and state.get(key) != value:
                    state[key] = value

    @contextlib.contextmanager
    def _server_change(self) -> Iterator[None]:
        """Changes made inside are the server's own (load, merge, state): not edits to save."""
        outer, self._applying = self._applying, True
        try:
            yield
        finally:
            self._applying = outer

    # -- edits and autosave -------------------------------------------------------------------

    def _on_change(self, target: str, _event: Any) -> None:
        if self._applying or target == "state":
            return
        self._changes += 1
        if not self.unsaved:
            self.unsaved = True
            # Visible to every client (state.dirty), set after this transaction is over.
            asyncio.get_running_loop().call_soon(self._mark_dirty)
        if self.room.awareness.autosave():
            self._schedule()

    def _mark_dirty(self) -> None:
        if self.unsaved:
            self._set_state(dirty=True)

    def _schedule(self) -> None:
        """Save ``save_delay`` seconds after the last edit (one timer, pushed back, not re-made)."""
        if self.save_delay is None:
            return
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self.save_delay
        if self._timer is None:
            self._timer = loop.call_at(self._due, self._timer_fired)

    def _timer_fired(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._due:
            self._timer = loop.call_at(self._due, self._timer_fired)
            return
        self._timer = None
        if self._task is None or self._task.done():
            self._task = loop.create_task(self.save())
        else:  # a save is running: come back after it
            self._timer = loop.call_at(loop.time() + (self.save_delay or 0), self._timer_fired)

    async def save_request(self, peer: Peer) -> SaveStatus:
        """A client's RAW save (Ctrl+S). Read-only clients cannot save."""
        if peer.read_only:
            return "skipped"
        return await self.save(explicit=True)

    async def save(self, explicit: bool = False) -> SaveStatus:
        """Write the document to its file unless that would overwrite a version nobody saw."""
        try:
            async with self._lock:
                return await self._save(explicit)
        except Exception:
            log.exception("saving %s failed", self.path)
            self.access.report("save", f"saving {self.path} failed")
            return "failed"

    async def _save(self, explicit: bool) -> SaveStatus:
        path = await self.access.locate()
        if path is None:
            return "failed"
        if path != self.path:
            self.path = path
            self._set_state(path=path)
        contents = self.access.contents
        try:
            disk = await contents.get(path, content=False, require_hash=True)
        except ApiError as exc:
            if exc.status != 404 or not explicit:
                # Deleted on disk: an autosave does not bring it back; Ctrl+S does.
                return "skipped" if exc.status == 404 else "failed"
            disk = {"hash": None, "writable": True}
        if not disk.get("writable", True):
            return "skipped"
        if disk["hash"] is not None and disk["hash"] != self.disk_hash:
            outcome = await self._disk_moved_on(path, disk["hash"], explicit)
            if outcome is not None:
                return outcome
        if not self.unsaved and not explicit:
            return "skipped"
        changes = self._changes
        content = await self.doc.aget()
        model = self.kind.to_model(content)
        await self.access.before_write(path, model)
        await contents.save(model, path)
        after = await contents.get(path, content=False, require_hash=True)
        self.disk_hash = after["hash"]
        self.conflict_hash = None
        self.saves += 1
        if self._changes == changes:
            self.unsaved = False
        self._set_state(dirty=self.unsaved, hash=self.disk_hash)
        self.access.matched(self.disk_hash)
        self.access.report("save", f"saved {path}")
        return "success"

    async def _disk_moved_on(self, path: str, disk_hash: str, explicit: bool) -> SaveStatus | None:
        """The file has a version the document has not matched: merge it, adopt it, or report a
        conflict. None means: go on saving (an explicit save after the conflict was reported)."""
        if explicit and self.conflict_hash == disk_hash:
            self.access.report("save", f"{path} changed on disk; overwritten on request")
            return None
        model = await self.access.contents.get(path, content=True, type=self.kind.contents_type,
                                               format=self.kind.read_format(), require_hash=True)
        content = self.kind.from_model(model)
        if not self.unsaved or not await self._differs(content):
            await self._merge(content, model["hash"])
            return "skipped" if not explicit else "success"
        self._conflict(path, model["hash"])
        return "failed"

    def _conflict(self, path: str, disk_hash: str) -> None:
        if self.conflict_hash != disk_hash:
            self.conflict_hash = disk_hash
            log.warning("%s changed on disk while it has unsaved collaborative edits: not overwritten", path)
            self.access.report("conflict", f"{path} changed on disk while it had unsaved edits")
            self.room.broadcast(protocol.raw_frame({"type": "conflict"}))

    async def _merge(self, content: Any, disk_hash: str) -> None:
        with self._server_change():
            if await self._differs(content):
                await self._set(content)
                self.access.report("overwrite", "out-of-band change merged into the document")
            self.disk_hash = disk_hash
            self.conflict_hash = None
            self.unsaved = False
            self._set_state(dirty=False, hash=disk_hash)
        self.access.matched(disk_hash)

    # -- the file changed on disk -------------------------------------------------------------

    async def disk_changed(self) -> None:
        """The watch extension saw the file change: merge the new version if there is one."""
        async with self._lock:
            path = await self.access.locate()
            if path is None:
                return
            if path != self.path:
                self.path = path
                self._set_state(path=path)
            try:
                disk = await self.access.contents.get(path, content=False, require_hash=True)
            except ApiError:
                return  # deleted, or not readable: the document stays as it is
            if disk["hash"] == self.disk_hash:
                return  # our own save, a touch, or a rewrite of the same bytes
            await self._disk_moved_on(path, disk["hash"], explicit=False)

    async def path_changed(self) -> None:
        """The file was renamed or moved: the document's ``state.path`` follows."""
        path = await self.access.locate()
        if path is not None and path != self.path:
            self.path = path
            self._set_state(path=path)

    async def close(self) -> None:
        """Save what is not saved yet, then stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self.unsaved and self.save_delay is not None:
            await self.save()
        self.doc.unobserve()
