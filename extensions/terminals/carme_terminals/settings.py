"""The ``terminals.*`` settings and the checked configuration the terminal manager runs with."""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from carme.config import ConfigError, Setting

if TYPE_CHECKING:
    from carme.server import Server


def declared() -> list[Setting]:
    """The settings of the ``terminals`` section."""
    return [
        Setting("shell", list, None,
                "The command a terminal runs, as a list (['/bin/zsh', '-l']); null: the user's login shell "
                "($SHELL, else the password database, else /bin/sh), started as a login shell (-l)",
                nullable=True),
        Setting("cull_inactive_timeout", float, 0.0,
                "Delete terminals with no input and no output for this many seconds (0: never)", minimum=0),
        Setting("cull_interval", float, 300.0, "Seconds between two checks for inactive terminals", minimum=0),
        Setting("cull_connected", bool, False,
                "Also cull inactive terminals that a browser is attached to (as the kernels' cull_connected)"),
        Setting("replay_chars", int, 64 * 1024,
                "How much recent output (characters) a browser gets back when it (re)attaches", minimum=0),
        Setting("client_buffer_chars", int, 256 * 1024,
                "Output (characters) waiting for one slow browser before the terminal stops reading its "
                "pseudo-terminal, so the program writing waits instead of the server's memory growing", minimum=4096),
    ]


def login_shell() -> list[str]:
    """The user's login shell as the anchor picks it: $SHELL, else the password database, else sh."""
    shell = os.environ.get("SHELL")
    if not shell:
        try:
            shell = pwd.getpwuid(os.getuid()).pw_shell
        except KeyError:
            shell = ""
    return [shell or shutil.which("sh") or "/bin/sh", "-l"]


@dataclass(frozen=True)
class TerminalsConfig:
    """The checked ``terminals`` settings of one app."""

    shell: tuple[str, ...]
    cull_inactive_timeout: float = 0.0
    cull_interval: float = 300.0
    cull_connected: bool = False
    replay_chars: int = 64 * 1024
    client_buffer_chars: int = 256 * 1024

    def __post_init__(self) -> None:
        if not self.shell or not all(isinstance(part, str) and part for part in self.shell):
            raise ConfigError(f"terminals.shell = {list(self.shell)!r} is not valid: expected a non-empty list of "
                              "non-empty strings, or null for the login shell")

    @classmethod
    def from_server(cls, server: Server, section: str = "terminals") -> TerminalsConfig:
        values = server.settings.section(section)
        shell = values.get("shell")
        return cls(
            shell=tuple(shell) if shell is not None else tuple(login_shell()),
            cull_inactive_timeout=values.get("cull_inactive_timeout", 0.0),
            cull_interval=values.get("cull_interval", 300.0),
            cull_connected=values.get("cull_connected", False),
            replay_chars=values.get("replay_chars", 64 * 1024),
            client_buffer_chars=values.get("client_buffer_chars", 256 * 1024),
        )
