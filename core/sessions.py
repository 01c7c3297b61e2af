"""Sessions: which kernel serves which notebook (or console, or file) path.

In memory, one :class:`SessionManager` per app (``server.sessions``). Shapes and rules follow
jupyter_server's SessionManager: creating a session for a path that has one returns that one;
a session whose kernel died or was culled disappears from the listing; deleting a session shuts
its kernel down. The kernel gets ``JPY_SESSION_NAME`` (the notebook's absolute path).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .kernels.manager import cwd_for_path

if TYPE_CHECKING:
    from .auth import User
    from .kernels.kernel import Kernel
    from .server import Server


class NoSuchSession(KeyError):
    """No session has that id."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id

    def __str__(self) -> str:
        return f"Session not found: session_id={self.session_id!r}"


class KernelGone(RuntimeError):
    """The session's kernel was shut down or died before the session was deleted."""


@dataclass
class SessionRecord:
    """One session: the notebook, console or file at ``path`` and the kernel serving it (a
    :class:`~carme.kernels.session.Session` is something else: a kernel's message signer)."""

    id: str
    path: str
    name: str | None
    type: str | None
    kernel_id: str


class SessionManager:
    """Creates, finds, updates and deletes sessions; owns nothing but the path <-> kernel map."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._sessions: dict[str, SessionRecord] = {}
        self._creating: dict[str, asyncio.Future[SessionRecord]] = {}  # path -> session being created

    def __len__(self) -> int:
        return len(self._alive())

    # -- reading ----------------------------------------------------------------------------

    def _alive(self) -> list[SessionRecord]:
        """Sessions whose kernel still runs; the others are forgotten (as jupyter_server does)."""
        kernels = self.server.kernels
        for session in list(self._sessions.values()):
            if session.kernel_id not in kernels:
                del self._sessions[session.id]
        return list(self._sessions.values())

    def model(self, session: SessionRecord) -> dict[str, Any]:
        kernel = self.server.kernels.get(session.kernel_id)
        model: dict[str, Any] = {"id": session.id, "path": session.path, "name": session.name, "type": session.type,
                                 "kernel": kernel.model()}
        if session.type == "notebook":
            model["notebook"] = {"path": session.path, "name": session.name}  # the deprecated shape, still sent
        return model

    def list(self) -> list[dict[str, Any]]:
        return [self.model(session) for session in self._alive()]

    def get(self, session_id: str) -> SessionRecord:
        """The live session of ``session_id``; NoSuchSession when unknown or its kernel is gone."""
        session = self._sessions.get(session_id)
        if session is None or session not in self._alive():
            raise NoSuchSession(session_id)
        return session

    def find_by_path(self, path: str) -> SessionRecord | None:
        return next((s for s in self._alive() if s.path == path), None)

    # -- changing ---------------------------------------------------------------------------

    def kernel_env(self, path: str, name: str | None) -> dict[str, str]:
        """``JPY_SESSION_NAME``: the notebook's absolute path (its folder + name when named)."""
        if name is not None:
            return {"JPY_SESSION_NAME": str(cwd_for_path(self.server.root_dir, path) / name)}
        return {"JPY_SESSION_NAME": path}

    async def start_kernel_for(self, path: str, name: str | None, kernel_name: str | None,
                               kernel_id: str | None = None, user: User | None = None) -> Kernel:
        env = await asyncio.to_thread(self.kernel_env, path, name)
        # pending=None: with pending kernels on, the session is made (and answered) while its
        # kernel still starts, as jupyter_server's
        return await self.server.kernels.start_kernel(kernel_name, path, env=env, kernel_id=kernel_id, user=user,
                                                      pending=None)

    async def create(self, path: str, name: str | None = None, type: str | None = None,
                     kernel_name: str | None = None, kernel_id: str | None = None,
                     user: User | None = None) -> SessionRecord:
        """The session of ``path``: the existing one, or a new one with the kernel ``kernel_id``
        (when it runs) or a new kernel of ``kernel_name``, started for ``user``. Errors of the
        kernel start propagate."""
        existing = self.find_by_path(path)
        if existing is not None:
            return existing
        pending = self._creating.get(path)
        if pending is not None:  # the same path is being created by another request: share it
            return await asyncio.shield(pending)
        future: asyncio.Future[SessionRecord] = asyncio.get_running_loop().create_future()
        self._creating[path] = future
        try:
            if kernel_id is None or kernel_id not in self.server.kernels:
                # A kernel id that does not run yet names the new kernel (as jupyter_server does).
                kernel_id = (await self.start_kernel_for(path, name, kernel_name, kernel_id, user)).id
            session = SessionRecord(str(uuid.uuid4()), path, name, type, kernel_id)
            self._sessions[session.id] = session
            future.set_result(session)
            return session
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it through shield
            raise
        finally:
            del self._creating[path]

    async def update(self, session_id: str, path: str | None = None, name: str | None = None,
                     type: str | None = None, kernel_id: str | None = None,
                     kernel_name: str | None = None, user: User | None = None) -> SessionRecord:
        """Rename, retype, or move the session to another kernel (by id, or a new one by name,
        started for ``user``); a replaced kernel is shut down. KeyError (NoSuchKernel) for an
        unknown ``kernel_id``."""
        session = self.get(session_id)
        old_kernel = session.kernel_id
        if kernel_id is not None:
            self.server.kernels.get(kernel_id)  # raises NoSuchKernel
        elif kernel_name is not None:
            kernel_id = (await self.start_kernel_for(session.path, session.name, kernel_name, user=user)).id
        if path is not None:
            session.path = path
        if name is not None:
            session.name = name
        if type is not None:
            session.type = type
        if kernel_id is not None:
            session.kernel_id = kernel_id
        if path is not None or name is not None:
            # The next restart of the kernel sees the new name (jupyter_server's update_env).
            kernel = self.server.kernels.get(session.kernel_id)
            kernel.env.update(await asyncio.to_thread(self.kernel_env, session.path, session.name))
        if session.kernel_id != old_kernel and old_kernel in self.server.kernels:
            await self.server.kernels.shutdown_kernel(old_kernel)
        return session

    async def delete(self, session_id: str) -> None:
        """Forget the session and shut its kernel down; KernelGone when the kernel was already gone."""
        session = self._sessions.get(session_id)
        if session is None:
            raise NoSuchSession(session_id)
        del self._sessions[session_id]
        if session.kernel_id not in self.server.kernels:
            raise KernelGone("Kernel deleted before session")
        await self.server.kernels.shutdown_kernel(session.kernel_id)
