"""carme-terminals: JupyterLab's terminals on carme.

jupyter_server_terminals' REST API (``/api/terminals``) and terminado's websocket protocol
(``/terminals/websocket/NAME``) over real pseudo-terminals, one session per terminal. The running
:class:`~carme_terminals.manager.TerminalManager` is ``server.services["terminals"]``.
"""

from __future__ import annotations

from .manager import TerminalManager, TerminalRequestError
from .terminal import Terminal

__all__ = ["Terminal", "TerminalManager", "TerminalRequestError"]
