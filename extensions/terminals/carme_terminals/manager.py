"""The terminals of one app: create (name, working folder, environment), find, delete, cull, stop.

Published as ``server.services["terminals"]`` while the extension runs. Knows nothing of HTTP:
bad requests are :class:`TerminalRequestError` with the status the API answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path

from carme.jsonutil import utcnow
from carme.tasks import cancel_and_wait

from .process import PtyProcess
from .settings import TerminalsConfig
from .terminal import Terminal

log = logging.getLogger("carme.terminals")

NAME_RE = re.compile(r"^\w+$")  # jupyter_server_terminals' route pattern
TERM = "xterm-256color"  # what xterm.js understands; set whatever the server's own TERM is


class TerminalRequestError(Exception):
    """A request the manager refuses: ``status`` (400, 404, 409) and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TerminalManager:
    """Every terminal of one app, by name."""

    def __init__(self, config: TerminalsConfig, root: Path, *, environ: Mapping[str, str] | None = None,
                 on_activity: Callable[[], None] = lambda: None) -> None:
        self.config = config
        self.root = root.resolve()
        self.environ = dict(os.environ if environ is None else environ)
        self.on_activity = on_activity
        self.terminals: dict[str, Terminal] = {}
        self._creating: set[str] = set()
        self._culler: asyncio.Task[None] | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self.terminals)

    def list(self) -> list[dict[str, str]]:
        return [terminal.model() for terminal in self.terminals.values()]

    def get(self, name: str) -> Terminal:
        terminal = self.terminals.get(name)
        if terminal is None:
            raise TerminalRequestError(404, f"Terminal not found: {name}")
        return terminal

    # -- creating ------------------------------------------------------------------------------

    def _new_name(self) -> str:
        """The lowest free positive integer, as terminado names terminals."""
        number = 1
        while str(number) in self.terminals or str(number) in self._creating:
            number += 1
        return str(number)

    def working_dir(self, cwd: str | None) -> Path:
        """``cwd`` (an API path relative to the root, or an absolute path inside it) checked; the
        root when not given. Blocking (it stats the folder): call it off the event loop."""
        if not cwd:
            return self.root
        given = Path(cwd)
        folder = (given if given.is_absolute() else self.root / cwd.lstrip("/")).resolve()
        if folder != self.root and not folder.is_relative_to(self.root):
            raise TerminalRequestError(400, f"cwd {cwd!r} is outside the served folder")
        if not folder.is_dir():
            raise TerminalRequestError(400, f"cwd {cwd!r} is not a directory")
        return folder

    def environment(self, server_url: str) -> dict[str, str]:
        """The server's environment plus what jupyter_server_terminals sets."""
        env = dict(self.environ)
        env["TERM"] = TERM
        env["JUPYTER_SERVER_ROOT"] = str(self.root)
        env["JUPYTER_SERVER_URL"] = server_url
        return env

    async def create(self, name: str | None = None, cwd: str | None = None, server_url: str = "") -> Terminal:
        """Start a terminal named ``name`` (the lowest free number when None) in ``cwd``.

        ``server_url`` is this server's URL as clients reach it (``JUPYTER_SERVER_URL``).
        """
        if self.closed:
            raise TerminalRequestError(503, "the terminals service is stopping")
        if name is not None:
            if not isinstance(name, str) or not NAME_RE.match(name):
                raise TerminalRequestError(400, f"terminal name {name!r} is not valid: expected letters, "
                                                "digits and underscores")
            if name in self.terminals or name in self._creating:
                raise TerminalRequestError(409, f"Terminal already exists: {name}")
        if cwd is not None and not isinstance(cwd, str):
            raise TerminalRequestError(400, f"cwd must be a string, not {type(cwd).__name__}")
        name = name or self._new_name()
        self._creating.add(name)  # claimed before the first await: two requests never share a name
        try:
            folder = await asyncio.to_thread(self.working_dir, cwd)
            try:
                process = PtyProcess(self.config.shell, str(folder), self.environment(server_url))
            except (OSError, subprocess.SubprocessError) as exc:
                raise TerminalRequestError(500, f"could not start {list(self.config.shell)}: {exc}") from None
            terminal = Terminal(name, process, replay_chars=self.config.replay_chars,
                                client_buffer_chars=self.config.client_buffer_chars,
                                on_end=self._ended, on_activity=self.on_activity)
            self.terminals[name] = terminal
            terminal.start()
        finally:
            self._creating.discard(name)
        log.info("terminal %s started: %s in %s (pid %d)", name, list(self.config.shell), folder, process.pid)
        self._ensure_culler()
        return terminal

    def _ended(self, terminal: Terminal) -> None:
        if self.terminals.get(terminal.name) is terminal:
            del self.terminals[terminal.name]

    # -- ending --------------------------------------------------------------------------------

    async def delete(self, name: str) -> None:
        """End terminal ``name`` and every process of its session."""
        terminal = self.get(name)
        await terminal.terminate()

    async def shutdown(self) -> None:
        """End every terminal (all sessions, concurrently) and the culler."""
        self.closed = True
        if self._culler is not None:
            await cancel_and_wait(self._culler, "the terminal culler", log)
            self._culler = None
        await asyncio.gather(*(terminal.terminate() for terminal in list(self.terminals.values())))

    # -- culling -------------------------------------------------------------------------------

    def _ensure_culler(self) -> None:
        """Start the culler on the first terminal when culling is on (as the anchor)."""
        if self._culler is None and self.config.cull_inactive_timeout > 0:
            self._culler = asyncio.ensure_future(self._cull_loop())

    async def _cull_loop(self) -> None:
        interval = self.config.cull_interval if self.config.cull_interval > 0 else 300.0
        while True:
            await asyncio.sleep(interval)
            for terminal in list(self.terminals.values()):
                try:
                    await self.cull_if_inactive(terminal)
                except Exception:
                    log.exception("culling terminal %s failed", terminal.name)

    async def cull_if_inactive(self, terminal: Terminal) -> bool:
        """Delete ``terminal`` if it has had no input or output for ``cull_inactive_timeout``
        seconds (and no browser attached, unless ``cull_connected``); True when culled."""
        timeout = self.config.cull_inactive_timeout
        if timeout <= 0 or terminal.state != "running":
            return False
        inactive = utcnow() - terminal.last_activity
        if inactive <= timedelta(seconds=timeout):
            return False
        if terminal.clients and not self.config.cull_connected:
            return False
        log.warning("culling terminal %s, inactive for %s", terminal.name, inactive)
        await terminal.terminate()
        return True
