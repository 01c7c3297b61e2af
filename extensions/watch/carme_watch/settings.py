"""The ``watch.*`` settings and the resolved, checked configuration the watcher runs with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from carme.config import ConfigError, Setting

if TYPE_CHECKING:
    from carme.server import Server

# Names (matched against every path component) and globs that are never reported. Version-control
# and tool folders change constantly and are never what a user edits; editor and Office lock and
# swap files come and go on every save.
DEFAULT_IGNORE: tuple[str, ...] = (
    ".git", ".hg", ".svn", ".bzr",
    ".ipynb_checkpoints", "__pycache__", "node_modules",
    ".venv", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".DS_Store", "Thumbs.db",
    "*.pyc", "*.pyo",
    "*.swp", "*.swx", "*~", ".~*", "~$*", ".#*", "#*#",
)


def declared() -> list[Setting]:
    """The settings of the ``watch`` section."""
    return [
        Setting("polling", bool, False,
                "Poll the file system instead of using OS notifications: for network file systems (NFS, SMB), "
                "WSL folders and containers where inotify events do not arrive"),
        Setting("poll_delay_ms", int, 1000, "Milliseconds between two scans when polling", minimum=1),
        Setting("debounce_ms", int, 500,
                "Longest time, in milliseconds, changes are grouped into one batch before they are reported",
                minimum=1),
        Setting("step_ms", int, 50,
                "A batch is reported once no new change arrived for this many milliseconds", minimum=1),
        Setting("ignore", list, list(DEFAULT_IGNORE),
                "Patterns never reported: a name or glob matched against every path component "
                "('node_modules', '*.pyc'), or, with a '/', against the whole path relative to the root"),
        Setting("extra_ignore", list, [], "More ignore patterns, added to `watch.ignore` (keeps the defaults)"),
        Setting("allow_hidden", bool, None,
                "Report hidden files and folders (a name starting with '.'); null follows the core's allow_hidden",
                nullable=True),
    ]


@dataclass(frozen=True)
class WatchConfig:
    """The checked ``watch`` settings of one app."""

    root: Path
    polling: bool = False
    poll_delay_ms: int = 1000
    debounce_ms: int = 500
    step_ms: int = 50
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    allow_hidden: bool = False

    def __post_init__(self) -> None:
        if self.step_ms > self.debounce_ms:
            raise ConfigError(f"watch.step_ms = {self.step_ms} is not valid: expected at most "
                              f"watch.debounce_ms ({self.debounce_ms})")
        for pattern in self.ignore:
            if not isinstance(pattern, str) or not pattern.strip("/"):
                raise ConfigError(f"watch.ignore: {pattern!r} is not valid: expected a non-empty name or glob")

    @classmethod
    def from_server(cls, server: Server, section: str = "watch") -> WatchConfig:
        """Read the section's settings; ``allow_hidden`` null follows the core's ``allow_hidden``."""
        values = server.settings.section(section)
        allow_hidden = values.get("allow_hidden")
        if allow_hidden is None:
            allow_hidden = bool(server.settings.get("allow_hidden", False))
        return cls(
            root=server.root_dir,
            polling=values.get("polling", False),
            poll_delay_ms=values.get("poll_delay_ms", 1000),
            debounce_ms=values.get("debounce_ms", 500),
            step_ms=values.get("step_ms", 50),
            ignore=tuple(values.get("ignore", DEFAULT_IGNORE)) + tuple(values.get("extra_ignore", ())),
            allow_hidden=allow_hidden,
        )
