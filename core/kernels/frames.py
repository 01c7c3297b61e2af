"""Websocket frame codecs for /api/kernels/ID/channels: the v1 binary protocol and the legacy one.

A message is handled as its raw parts ``[header, parent_header, metadata, content, *buffers]``
(the ZMQ frames after the signature). The codecs move those bytes; they never re-encode the
content.

``v1.kernel.websocket.jupyter.org`` (every frame binary, integers uint64 little-endian)::

    [n] [offset_0 .. offset_{n-1}] [channel] [header] [parent_header] [metadata] [content] [buffers...]
    n = 2 + number of parts; offset_0 = 8 * (n + 1) (start of the channel name); offset_1 = end of
    the channel name; offset_k (k >= 2) = end of part k-2.

Legacy (no subprotocol): a text frame with the JSON of the whole message
(``{header, msg_id, msg_type, parent_header, metadata, content, buffers: [], channel}``), or, for
a message with buffers, a binary frame (integers uint32 big-endian)::

    [nbufs] [offset_0 .. offset_{nbufs-1}] [JSON of the message without "buffers"] [buffer 1] ...
    nbufs counts the JSON part; offset_i is the start of part i, offset_0 = 4 * (nbufs + 1).

Server to client, the legacy JSON is spliced from the raw parts (no parse of the content); client
to server, legacy messages are parsed and packed (that protocol has no raw form to keep).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence

import orjson

from .message import CHANNELS

log = logging.getLogger("carme.kernels.frames")

V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"
DEFAULT_CHANNEL = "shell"

_U64 = struct.Struct("<Q")
_U32 = struct.Struct(">I")
_V1_HEADS = [struct.Struct(f"<{n + 1}Q") for n in range(16)]  # by offset count: messages with < 10 buffers


class FrameError(ValueError):
    """A websocket frame from a client is not a well-formed kernel message."""


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """The subprotocol to accept, as jupyter_server chooses: v1 when offered, else legacy (None)."""
    return V1_SUBPROTOCOL if V1_SUBPROTOCOL in offered else None


# -- v1 ----------------------------------------------------------------------------------------


def encode_v1(channel: bytes, parts: Sequence[bytes]) -> bytes:
    """One v1 frame for ``parts`` on ``channel`` (the channel name as ASCII bytes)."""
    n = len(parts) + 2
    position = 8 * (n + 1)
    offsets = [n, position]
    position += len(channel)
    offsets.append(position)
    for part in parts:
        position += len(part)
        offsets.append(position)
    packer = _V1_HEADS[n] if n < len(_V1_HEADS) else struct.Struct(f"<{n + 1}Q")
    return b"".join((packer.pack(*offsets), channel, *parts))


def decode_v1(data: bytes) -> tuple[str, list[bytes]]:
    """Split a v1 frame into (channel, parts); :class:`FrameError` when the layout is wrong."""
    size = len(data)
    if size < 8:
        raise FrameError(f"v1 frame of {size} bytes is too short")
    (n,) = _U64.unpack_from(data, 0)
    if n < 6 or 8 * (n + 1) > size:
        raise FrameError(f"v1 frame declares {n} offsets; a message needs at least 6 in {size} bytes")
    offsets = struct.unpack_from(f"<{n}Q", data, 8)
    if offsets[0] != 8 * (n + 1):
        raise FrameError(f"v1 frame: first offset is {offsets[0]}, expected {8 * (n + 1)}")
    _check_offsets(offsets, 8 * (n + 1), size, "v1 frame")
    try:
        channel = data[offsets[0]:offsets[1]].decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("v1 frame: the channel name is not ASCII") from None
    return channel, [data[offsets[i]:offsets[i + 1]] for i in range(1, n - 1)]


# -- legacy ------------------------------------------------------------------------------------


def encode_legacy(channel: bytes, parts: Sequence[bytes], msg_id: str, msg_type: str) -> bytes | str:
    """The legacy frame for ``parts``: JSON text, or the binary layout when there are buffers.

    ``msg_id`` and ``msg_type`` come from the already parsed header; the JSON parts are spliced
    in as they are (they are JSON objects already).
    """
    head = b"".join((
        b'{"header":', parts[0], b',"msg_id":', orjson.dumps(msg_id), b',"msg_type":', orjson.dumps(msg_type),
        b',"parent_header":', parts[1] or b"{}", b',"metadata":', parts[2] or b"{}",
        b',"content":', parts[3] or b"{}", b',"channel":"', channel, b'"',
    ))
    if len(parts) == 4:
        return (head + b',"buffers":[]}').decode("utf-8", "replace")
    buffers = parts[4:]
    json_part = head + b"}"
    count = len(buffers) + 1
    offsets = [4 * (count + 1)]
    offsets.append(offsets[0] + len(json_part))
    for buffer in buffers[:-1]:
        offsets.append(offsets[-1] + len(buffer))
    return b"".join((struct.pack(f">{count + 1}I", count, *offsets), json_part, *buffers))


def decode_legacy(data: bytes | str) -> tuple[str | None, list[bytes]]:
    """Parse a legacy frame (text JSON, or binary with buffers) into (channel or None, parts)."""
    buffers: list[bytes] = []
    if isinstance(data, str):
        body: bytes | str = data
    else:
        body, buffers = _split_legacy_binary(data)
    try:
        msg = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"legacy frame is not JSON: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("header"), dict):
        raise FrameError("legacy frame: a message must be a JSON object with a header object")
    channel = msg.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise FrameError("legacy frame: channel must be a string")
    parts = [orjson.dumps(msg["header"])]
    for key in ("parent_header", "metadata", "content"):
        value = msg.get(key)
        parts.append(orjson.dumps(value) if isinstance(value, dict) else b"{}")
    return channel, parts + buffers


def _split_legacy_binary(data: bytes) -> tuple[bytes, list[bytes]]:
    size = len(data)
    if size < 8:
        raise FrameError(f"legacy binary frame of {size} bytes is too short")
    (count,) = _U32.unpack_from(data, 0)
    if count < 1 or 4 * (count + 1) > size:
        raise FrameError(f"legacy binary frame declares {count} parts in {size} bytes")
    offsets = [*struct.unpack_from(f">{count}I", data, 4), size]
    _check_offsets(offsets, 4 * (count + 1), size, "legacy binary frame")
    pieces = [data[offsets[i]:offsets[i + 1]] for i in range(count)]
    return pieces[0], pieces[1:]


def _check_offsets(offsets: Sequence[int], start: int, size: int, what: str) -> None:
    previous = start
    for offset in offsets:
        if offset < previous or offset > size:
            raise FrameError(f"{what}: offsets out of order or past the end")
        previous = offset


# -- client frames -----------------------------------------------------------------------------


def decode_client_frame(data: bytes | str, v1: bool) -> tuple[str, list[bytes]] | None:
    """A client's frame as (channel, parts) ready to sign and send; None (logged) to drop it.

    A missing channel means shell (with a warning, as jupyter_server); an unknown one is dropped.
    """
    try:
        if v1:
            if isinstance(data, str):
                raise FrameError("a text frame on the v1 binary protocol")
            channel: str | None
            channel, parts = decode_v1(data)
        else:
            channel, parts = decode_legacy(data)
    except FrameError as exc:
        log.warning("dropped a client websocket frame: %s", exc)
        return None
    if len(parts) < 4:
        log.warning("dropped a client message with %d parts (need header, parent, metadata, content)", len(parts))
        return None
    if not channel:
        log.warning("client message without a channel; sending it on shell")
        channel = DEFAULT_CHANNEL
    elif channel not in CHANNELS:
        log.warning("dropped a client message for unknown channel %r", channel[:40])
        return None
    return channel, parts

