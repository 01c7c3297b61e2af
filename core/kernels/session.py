"""The ZMQ side of the Jupyter messaging protocol: signing, verifying, packing messages.

Wire layout (one multipart ZMQ message)::

    [routing identities...] b"<IDS|MSG>" signature header parent_header metadata content [buffers...]

The signature is the lowercase hex HMAC-SHA256 (keyed with the connection file's ``key``) over
the four JSON frames; buffers are not signed; an empty key means no signing. Every inbound
message is verified with :func:`hmac.compare_digest`; one that fails is dropped and logged,
never handed on.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

from ..jsonutil import isoformat, utcnow
from .message import KernelMessage

log = logging.getLogger("carme.kernels.session")

DELIMITER = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.3"
SIGNATURE_SCHEME = "hmac-sha256"
SHA256_BLOCK = 64  # bytes


def new_key() -> bytes:
    """A fresh signing key, as jupyter_client makes them (ascii, so it fits a JSON file)."""
    return str(uuid.uuid4()).encode("ascii")


def new_id() -> str:
    return uuid.uuid4().hex


class DigestHistory:
    """Signatures seen recently, to refuse a replayed message.

    jupyter_client keeps 2**16 per session (about 8 MB once full); 4096 still refuses a replay of
    any recent message at a sixteenth of the memory, which matters with many kernels.
    """

    def __init__(self, size: int = 4096) -> None:
        self._seen: set[bytes] = set()
        self._order: deque[bytes] = deque()
        self._size = size

    def add(self, signature: bytes) -> bool:
        """Record ``signature``; False when it was already seen (a replay)."""
        if not signature:
            return True  # unsigned sessions cannot detect replays
        if signature in self._seen:
            return False
        self._seen.add(signature)
        self._order.append(signature)
        if len(self._order) > self._size:
            self._seen.discard(self._order.popleft())
        return True


def _hmac_pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 objects that have taken the HMAC inner and outer pads of ``key`` (RFC 2104)."""
    if len(key) > SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(SHA256_BLOCK, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key)))


class Session:
    """Signs, verifies and packs messages for one kernel connection.

    ``key`` is the connection file's key; ``session_id`` goes in the header of messages built
    here; ``username`` too. HMAC-SHA256 (RFC 2104) is computed from two SHA-256 objects keyed
    once (the inner and outer pads) and copied per message: the same digest as ``hmac``'s, at
    about half the cost of copying an ``hmac`` object, whose methods are Python wrappers (every
    kernel message is verified).
    """

    def __init__(self, key: bytes, session_id: str | None = None, username: str | None = None) -> None:
        self.key = key
        self.session_id = session_id or new_id()
        self.username = username or os.environ.get("USER", "carme")
        self._pads = _hmac_pads(key) if key else None

    # -- signing ----------------------------------------------------------------------------

    def sign(self, frames: Sequence[bytes]) -> bytes:
        """The signature of ``[header, parent_header, metadata, content]`` (b"" when unkeyed)."""
        if self._pads is None:
            return b""
        inner_pad, outer_pad = self._pads
        inner = inner_pad.copy()
        for frame in frames[:4]:
            inner.update(frame)
        outer = outer_pad.copy()
        outer.update(inner.digest())
        return outer.hexdigest().encode("ascii")

    def verify(self, signature: bytes, frames: Sequence[bytes]) -> bool:
        """True when ``signature`` is right for ``frames`` (always true when unkeyed)."""
        if self._pads is None:
            return True
        return hmac.compare_digest(signature, self.sign(frames))

    # -- building messages ------------------------------------------------------------------

    def header(self, msg_type: str) -> dict[str, Any]:
        return {"msg_id": new_id(), "msg_type": msg_type, "username": self.username,
                "session": self.session_id, "date": isoformat(utcnow()), "version": PROTOCOL_VERSION}

    def msg(self, channel: str, msg_type: str, content: dict[str, Any] | None = None,
            parent: KernelMessage | dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
            buffers: Sequence[bytes] = (), *, synthetic: bool = False) -> KernelMessage:
        """A new message from this session; ``parent`` is a message or a parent header dict."""
        parent_header = parent.header if isinstance(parent, KernelMessage) else (parent or {})
        return KernelMessage.from_parts(channel, self.header(msg_type), parent_header, metadata, content, buffers,
                                        synthetic=synthetic)

    # -- wire format ------------------------------------------------------------------------

    def serialize(self, msg: KernelMessage | Sequence[bytes], identities: Sequence[bytes] = ()) -> list[bytes]:
        """The multipart frames to send on a ZMQ socket: identities, delimiter, signature, parts."""
        frames = msg.frames if isinstance(msg, KernelMessage) else list(msg)
        return [*identities, DELIMITER, self.sign(frames), *frames]

    def deserialize(self, channel: str, parts: Sequence[bytes], history: DigestHistory | None = None,
                    ) -> KernelMessage | None:
        """Verify and wrap frames received from ZMQ; None (logged) when unsigned, forged or malformed.

        ``parts`` are bytes, in a list as a receive makes them (used as they are: the message's
        frames are a slice of it) or any other sequence (copied).

        ``history``, when given, also refuses a signature seen before (a replay).
        """
        if not isinstance(parts, list):
            parts = [bytes(p) for p in parts]
        try:
            split = parts.index(DELIMITER)
        except ValueError:
            log.warning("dropped a %s message without the <IDS|MSG> delimiter", channel)
            return None
        frames = parts[split + 2:]
        if len(frames) < 4:
            log.warning("dropped a %s message with %d frames (need 4)", channel, len(frames))
            return None
        signature = parts[split + 1]
        if not self.verify(signature, frames):
            log.warning("dropped a %s message with a bad signature", channel)
            return None
        if history is not None and not history.add(signature):
            log.warning("dropped a replayed %s message (signature seen before)", channel)
            return None
        try:
            return KernelMessage(channel, frames)
        except ValueError:
            log.warning("dropped a %s message whose header is not JSON", channel)
            return None


def identities_of(parts: Sequence[bytes]) -> list[bytes]:
    """The routing identities before the delimiter (topics on iopub)."""
    try:
        return list(parts[: list(parts).index(DELIMITER)])
    except ValueError:
        return []
