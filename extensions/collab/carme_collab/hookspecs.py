"""The hook the collab extension adds for other extensions (an authorization extension, a product)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carme.hooks import hookspec

if TYPE_CHECKING:
    from carme.auth import User
    from carme.server import Server


@hookspec(firstresult=True)
def carme_collab_can_write(server: Server, user: User | None, path: str) -> bool | None:
    """May ``user`` edit the collaborative document of ``path``?

    Called when a client joins a document's room (``path`` is the file's API path). Return False
    to make the client read-only: it sees every edit live, its own edits are dropped by the server
    and never reach the other clients or the disk; True to let it write; None to leave the
    decision to the next plugin. Without an answer, the ``collab.read_only_users`` setting decides.
    An extension implementing it loads and works without collab (the hook is then never called).
    """
