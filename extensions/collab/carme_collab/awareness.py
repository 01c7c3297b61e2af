"""The awareness states of one room: who is there, their cursors and names, which connection owns them.

y-protocols' rules: an entry replaces the known one when its clock is newer, or when it has the
same clock and removes the state. The server keeps the latest entry of each client so that a
client joining later gets everybody at once, and remembers which connection sent it so that the
states of a connection that drops are removed for the others (as the y-websocket server does).
"""

from __future__ import annotations

from typing import Any

from .protocol import AwarenessEntry, encode_awareness, parse_awareness


class Awareness:
    """Live awareness entries of one room, by Yjs client id."""

    def __init__(self) -> None:
        self.entries: dict[int, AwarenessEntry] = {}
        self.owners: dict[int, object] = {}

    def apply(self, payload: bytes, owner: object) -> list[AwarenessEntry]:
        """Take a client's awareness update; returns the entries that changed something.

        Raises :class:`carme_collab.protocol.ProtocolError` for a malformed payload.
        """
        accepted = []
        for entry in parse_awareness(payload):
            known = self.entries.get(entry.client_id)
            if known is not None and not (entry.clock > known.clock
                                          or (entry.clock == known.clock and entry.state is None
                                              and known.state is not None)):
                continue
            self.entries[entry.client_id] = entry
            if entry.state is None:
                self.owners.pop(entry.client_id, None)
            else:
                self.owners[entry.client_id] = owner
            accepted.append(entry)
        return accepted

    def snapshot(self) -> bytes | None:
        """An awareness update with every live state, or None when nobody has one."""
        live = [entry for entry in self.entries.values() if entry.state is not None]
        return encode_awareness(live) if live else None

    def drop(self, owner: object) -> bytes | None:
        """Remove the states ``owner`` sent; the update telling the others, or None."""
        gone = []
        for client_id in [cid for cid, who in self.owners.items() if who is owner]:
            del self.owners[client_id]
            known = self.entries[client_id]
            entry = AwarenessEntry(client_id, known.clock + 1, None, b"null")
            self.entries[client_id] = entry
            gone.append(entry)
        return encode_awareness(gone) if gone else None

    def states(self) -> list[dict[str, Any]]:
        """The live states (``user``, ``autosave``, cursors, ...)."""
        return [entry.state for entry in self.entries.values() if entry.state is not None]

    def autosave(self) -> bool:
        """Whether the document autosaves: yes unless every client that says so turned it off
        (JupyterLab's per-user setting, shared through awareness as jupyter-collaboration reads it)."""
        flags = [state.get("autosave", True) for state in self.states() if state]
        return not flags or any(bool(flag) for flag in flags)
