"""The Watcher service: watches the served root and reports each debounced batch of changes.

One asyncio task per app drives a watchfiles ``RustNotify`` on a dedicated thread: the Rust side
collects OS notifications (or polls) and groups them into batches; each batch is filtered,
coalesced to one change per path and tagged api/external on that thread, then emitted on the event
bus and passed to the ``carme_watch_on_files_changed`` hook on the event loop.

Nothing that happens to the file system stops it: a missing or replaced root is waited for and
watched again; folders that cannot be read are skipped (the rest is still watched); the inotify watch limit switches
to polling; any other error is logged and retried with back-off. Each of these is logged once, in
words that say what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from watchfiles._rust_notify import RustNotify, WatchfilesRustInternalError

from .changes import Change, PathFilter, coalesce
from .coverage import readable_cover
from .known import MAX_KNOWN, KnownPaths
from .events import FILE_CHANGED
from .origin import ApiWrites, tag
from .settings import WatchConfig

if TYPE_CHECKING:
    from carme.server import Server

log = logging.getLogger("carme.watch")

State = Literal["starting", "watching", "waiting", "stopped"]
RUST_TIMEOUT_MS = 1000  # how often, at rest, the thread checks that the root is still the same folder
RETRY_MIN_S, RETRY_MAX_S = 0.25, 5.0
START_WAIT_S = 3.0
STOP_WAIT_S = 5.0
PATHS_PER_POLL_MS = 50  # fallback polling: 1 ms of interval per 50 paths (50,000 paths: 1 s)


def _identity(path: os.PathLike[str] | str) -> tuple[int, int] | None:
    """(device, inode) of a folder, or None if it is missing or not a folder."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if os.path.isdir(path) else None


def _watch_limit(exc: BaseException) -> bool:
    """Whether an error from the backend means the OS limit on watches or inotify instances."""
    text = str(exc).lower()
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EMFILE):
        return True
    return "limit" in text or f"os error {errno.ENOSPC}" in text or f"os error {errno.EMFILE}" in text


class Watcher:
    """Watches one root for one app; published as ``server.services["watch"]``.

    Attributes read by tests and the status route: ``state`` (``starting``, ``watching``,
    ``waiting`` for the root, ``stopped``), ``mode`` (``native`` or ``polling``), ``generation``
    (how many times watching (re)started), ``open_ms`` (how long the last start took), ``batches``
    and ``changes`` reported so far, and ``problem`` (the last error message, or None).
    """

    def __init__(self, server: Server, config: WatchConfig) -> None:
        self.server = server
        self.config = config
        self.filter = PathFilter(config.ignore, config.allow_hidden)
        self.known = KnownPaths(config.root, self.filter)
        window = 2.0 + 2 * (config.debounce_ms + (config.poll_delay_ms if config.polling else 0)) / 1000
        self.api_writes = ApiWrites(config.root, window)
        self.state: State = "starting"
        self.mode: Literal["native", "polling"] = "polling" if config.polling else "native"
        self.generation = 0
        self.batches = 0
        self.changes = 0
        self.problem: str | None = None
        self.open_ms: float | None = None  # how long the last (re)start took: backend walk + known-paths scan
        self._ignore_denied = False
        self._stop_flag = threading.Event()  # read by the Rust loop on every step
        self._stopping = asyncio.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()

    # ---------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start watching; returns once the first attempt to watch is done (or after a few seconds)."""
        # A thread of its own: a watch call holds it for up to a second, which must not starve
        # the default executor that the contents API uses for file I/O.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="carme-watch")
        self._task = asyncio.create_task(self._run(), name="carme-watch")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), START_WAIT_S)

    async def stop(self) -> None:
        """Stop watching and release the thread; safe to call twice."""
        self._stop_flag.set()
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_WAIT_S)
            except TimeoutError:
                log.warning("file watcher did not stop within %.0f s; cancelling it", STOP_WAIT_S)
                task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        self.state = "stopped"

    def status(self) -> dict[str, Any]:
        """What GET /api/watch reports."""
        return {"state": self.state, "mode": self.mode, "generation": self.generation, "open_ms": self.open_ms,
                "batches": self.batches, "changes": self.changes, "problem": self.problem}

    # ---------------------------------------------------------------------------- the loop

    async def _in_thread(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _run(self) -> None:
        delay = RETRY_MIN_S
        try:
            while not self._stop_flag.is_set():
                notify = await self._open()
                self._first_attempt.set()
                if notify is None:
                    await self._pause(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                delay = RETRY_MIN_S
                try:
                    await self._watch(notify)
                except Exception as exc:
                    self._backend_failed(exc)
                    await self._pause(delay)
                finally:
                    notify.close()
        except Exception:  # a bug of ours: log it, never take the server down
            log.exception("file watcher stopped after an unexpected error")
        finally:
            self._first_attempt.set()
            self.state = "stopped"

    async def _open(self) -> RustNotify | None:
        """Start the backend on the root; None (and a log line) when it cannot be watched now."""
        root, polling = self.config.root, self.mode == "polling"
        started = time.perf_counter()
        paths = [str(root)]
        try:
            if self._ignore_denied:
                paths = await self._readable_paths()
                if not paths:
                    self._note_waiting(f"the served folder {root} cannot be read; retrying")
                    return None
            notify = await self._in_thread(RustNotify, paths, False, polling, await self._poll_delay(),
                                           True, self._ignore_denied)
        except FileNotFoundError:
            self._note_waiting(f"the served folder {root} does not exist; watching it again once it is back")
            return None
        except PermissionError:
            if self._ignore_denied:
                self._note_waiting(f"the served folder {root} cannot be read; retrying")
                return None
            self._ignore_denied = True
            return await self._open()
        except Exception as exc:
            self._backend_failed(exc)
            return None
        await self._in_thread(self.known.scan)  # after the backend is up, so no change falls between
        self.open_ms = (time.perf_counter() - started) * 1000
        recovering = self.state == "waiting"
        self.state = "watching"
        self.generation += 1
        if recovering:  # a problem that stopped watching is over; a fallback (polling, skipped folders) stays
            log.info("watching %s again (%s)", root, self.mode)
            self.problem = None
        else:
            log.debug("watching %s (%s)", root, self.mode)
        return notify

    async def _poll_delay(self) -> int:
        """The poll interval: as set, or, when polling is a fallback, stretched on big trees.

        A poll stats every file (about 10 % of a core for 50,000 files every second), so a tree
        too big for the OS watch limit is polled at most every ~1 s per 50,000 reported paths.
        """
        if self.config.polling or self.mode != "polling":
            return self.config.poll_delay_ms
        if self.known.paths is None:
            await self._in_thread(self.known.scan)
        count = len(self.known.paths) if self.known.paths is not None else MAX_KNOWN
        delay = max(self.config.poll_delay_ms, count // PATHS_PER_POLL_MS)
        if delay != self.config.poll_delay_ms:
            log.warning("polling %s (%d paths) every %.1f s", self.config.root, count, delay / 1000)
        return delay

    async def _readable_paths(self) -> list[str]:
        """The folders to watch around unreadable ones (see :mod:`carme_watch.coverage`), logged."""
        cover, unreadable = await self._in_thread(readable_cover, self.config.root)
        if unreadable:
            shown = ", ".join(os.path.relpath(p, self.config.root) for p in unreadable[:5])
            more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
            self._warn(f"{len(unreadable)} folder(s) under {self.config.root} cannot be read and are not watched: "
                       f"{shown}{more}")
        return cover

    async def _watch(self, notify: RustNotify) -> None:
        """Report batches until stopped or until the root is deleted or replaced."""
        root = self.config.root
        identity = await self._in_thread(_identity, root)
        while not self._stop_flag.is_set():
            result, now = await self._in_thread(self._next_batch, notify)
            if isinstance(result, list):
                if result:
                    await self._dispatch(result)
            elif result == "stop":
                return
            if now != identity:
                what = "deleted" if now is None else "replaced by another folder"
                self._note_waiting(f"the served folder {root} was {what}; watching it again once it is back")
                return

    def _next_batch(self, notify: RustNotify) -> tuple[list[Change] | str, tuple[int, int] | None]:
        """On the watcher thread: wait for one batch, then filter, coalesce and tag it."""
        cfg = self.config
        raw = notify.watch(cfg.debounce_ms, cfg.step_ms, RUST_TIMEOUT_MS, self._stop_flag)
        if isinstance(raw, str):
            return raw, _identity(cfg.root)
        changes = self.known.apply(coalesce(raw, cfg.root, self.filter))
        if changes:
            changes = self.known.fold_moves(tag(changes, self.api_writes.snapshot(), cfg.root))
        return changes, _identity(cfg.root)

    async def _dispatch(self, changes: list[Change]) -> None:
        """Emit one event per change, then call the hook once for the batch."""
        self.batches += 1
        self.changes += len(changes)
        for change in changes:
            self.server.events.emit(FILE_CHANGED, change.event_data())
        await self.server.notify("carme_watch_on_files_changed", changes=changes)

    # ---------------------------------------------------------------------------- problems

    def _backend_failed(self, exc: BaseException) -> None:
        if isinstance(exc, (OSError, WatchfilesRustInternalError)) and _watch_limit(exc) and self.mode == "native":
            self.mode = "polling"
            self._warn(f"the OS limit on file watches is reached ({exc}); polling {self.config.root} instead, "
                       "which notices changes later and costs CPU on big trees. Raise it (Linux: sysctl "
                       "fs.inotify.max_user_watches=524288 and fs.inotify.max_user_instances=512) and restart, "
                       "or set watch.polling=true to silence this", error=True)
            return
        self.state = "waiting"
        self._warn(f"watching {self.config.root} failed: {type(exc).__name__}: {exc}; retrying", error=True)

    def _note_waiting(self, message: str) -> None:
        self.state = "waiting"
        self._warn(message)

    def _warn(self, message: str, error: bool = False) -> None:
        if message != self.problem:  # once per distinct problem, not once per retry
            log.log(logging.ERROR if error else logging.WARNING, "%s", message)
        self.problem = message
