"""The collaboration wire protocol: y-websocket's sync and awareness messages plus Jupyter's RAW.

Every websocket frame is binary. It starts with a varUint message type (lib0 encoding: 7 bits
per byte, low bits first): ``0`` SYNC (then a varUint sub-type: ``0`` step 1 with a state
vector, ``1`` step 2 or ``2`` update, each with a varUint8Array update), ``1`` AWARENESS (a
varUint8Array of awareness states) and ``2`` RAW, jupyter-collaboration's JSON messages (a
varString; the client's ``"save"`` is followed by a varUint save id). Strings are counted in
bytes, as lib0 does (pycrdt's own encoder counts characters, which breaks on non-ASCII text).

Pure functions over bytes: nothing here knows about websockets or rooms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SYNC = 0
AWARENESS = 1
RAW = 2
SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2
EMPTY_UPDATE = b"\x00\x00"  # what Yjs sends for "nothing new"
EMPTY_STATE = b"\x00"  # the state vector of a document that holds nothing (a client's first sync)

# Close codes and reasons the JupyterLab provider understands (jupyter-collaboration's).
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404
CLOSE_SERVER_ERROR = 4500
CLOSE_RELOAD = 1003


# A frame to send: its bytes, or its parts in order (one websocket message all the same).
Outgoing = bytes | tuple[bytes, ...]


def outgoing_size(frame: Outgoing) -> int:
    return len(frame) if isinstance(frame, bytes) else sum(map(len, frame))


class ProtocolError(ValueError):
    """A frame that is not a well-formed y-websocket or RAW message."""


def var_uint(number: int) -> bytes:
    """lib0's varUint encoding of a non-negative integer."""
    out = bytearray()
    while number > 127:
        out.append(128 | (number & 127))
        number >>= 7
    out.append(number)
    return bytes(out)


def var_bytes(data: bytes) -> bytes:
    """A varUint8Array: the length, then the bytes."""
    return var_uint(len(data)) + data


def _message(head: bytes, data: bytes) -> bytes:
    # One copy of ``data`` (a document's whole state can be tens of MB), not one per concatenation.
    return b"".join((head, var_uint(len(data)), data))


def read_var_uint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Read a varUint at ``pos``; returns (value, position after it)."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ProtocolError("truncated varUint")
        byte = data[pos]
        pos += 1
        value |= (byte & 127) << shift
        if byte < 128:
            return value, pos
        shift += 7
        if shift > 63:
            raise ProtocolError("varUint longer than 64 bits")


def read_var_bytes(data: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    """Read a varUint8Array at ``pos``; returns (bytes, position after it)."""
    length, pos = read_var_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError("truncated byte array")
    return bytes(data[pos:end]), end


# -- building frames --------------------------------------------------------------------------


def sync_step1(state_vector: bytes) -> bytes:
    return _message(bytes((SYNC, SYNC_STEP1)), state_vector)


def sync_step2(update: bytes) -> bytes:
    return _message(bytes((SYNC, SYNC_STEP2)), update)


def sync_step2_parts(update: bytes) -> tuple[bytes, bytes]:
    """The SyncStep2 frame of ``update`` as its header and ``update`` itself: sent as one message
    (:data:`Outgoing`), a big document is not copied into a frame of its own."""
    return bytes((SYNC, SYNC_STEP2)) + var_uint(len(update)), update


def sync_update(update: bytes) -> bytes:
    return _message(bytes((SYNC, SYNC_UPDATE)), update)


def awareness_frame(payload: bytes) -> bytes:
    return _message(bytes((AWARENESS,)), payload)


def raw_frame(message: dict[str, Any]) -> bytes:
    """A RAW frame carrying ``message`` as JSON (ASCII-only, as jupyter-collaboration sends)."""
    return bytes((RAW,)) + var_bytes(json.dumps(message).encode())


def save_request(save_id: int) -> bytes:
    """The client's RAW ``save`` request (what JupyterLab sends on Ctrl+S)."""
    return bytes((RAW,)) + var_bytes(b"save") + var_uint(save_id)


# -- reading frames ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: ``kind`` (SYNC, AWARENESS, RAW, or another type number), ``sub`` (the
    sync sub-type), ``payload`` (the state vector, update or awareness bytes), ``text`` and
    ``save_id`` for RAW frames."""

    kind: int
    sub: int = -1
    payload: bytes = b""
    text: str = ""
    save_id: int | None = None


def parse(data: bytes) -> Frame:
    """Decode one frame; raises :class:`ProtocolError` on a malformed one."""
    kind, pos = read_var_uint(data, 0)
    if kind == SYNC:
        sub, pos = read_var_uint(data, pos)
        if sub not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE):
            raise ProtocolError(f"unknown sync message type {sub}")
        payload, _ = read_var_bytes(data, pos)
        return Frame(kind, sub, payload)
    if kind == AWARENESS:
        payload, _ = read_var_bytes(data, pos)
        return Frame(kind, payload=payload)
    if kind == RAW:
        raw, pos = read_var_bytes(data, pos)
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise ProtocolError("RAW message is not UTF-8") from None
        save_id = None
        if text == "save" and pos < len(data):
            save_id, _ = read_var_uint(data, pos)
        return Frame(kind, text=text, save_id=save_id)
    return Frame(kind)


# -- awareness payloads -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's entry of an awareness update: ``state`` is None when the client left."""

    client_id: int
    clock: int
    state: dict[str, Any] | None
    json: bytes


def parse_awareness(payload: bytes) -> list[AwarenessEntry]:
    """The entries of an awareness update (y-protocols' encoding)."""
    count, pos = read_var_uint(payload, 0)
    entries = []
    for _ in range(count):
        client_id, pos = read_var_uint(payload, pos)
        clock, pos = read_var_uint(payload, pos)
        text, pos = read_var_bytes(payload, pos)
        try:
            state = json.loads(text) if text else None
        except ValueError:
            raise ProtocolError("awareness state is not JSON") from None
        if state is not None and not isinstance(state, dict):
            state = None if state is None else {"value": state}
        entries.append(AwarenessEntry(client_id, clock, state, text or b"null"))
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    """An awareness update holding ``entries``."""
    parts = [var_uint(len(entries))]
    for entry in entries:
        parts += [var_uint(entry.client_id), var_uint(entry.clock), var_bytes(entry.json)]
    return b"".join(parts)
