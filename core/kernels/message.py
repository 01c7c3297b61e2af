"""KernelMessage: one Jupyter message as it travels through carme, frames kept as bytes.

The relay moves messages between ZMQ and websockets without re-encoding them, so a message is
its raw frames ``[header, parent_header, metadata, content, *buffers]`` plus the channel it came
on. Only the header is parsed eagerly (it is small and the server needs ``msg_type``,
``msg_id`` and ``session`` to route); ``parent_header``, ``metadata`` and ``content`` are parsed
on first access and cached.

Used by the kernel layer, the websocket relay and extensions (widgets) alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

# The channels a client talks to a kernel on (the heartbeat is the server's alone): the ones it
# sends requests on (a DEALER each, replies come back to it alone), and iopub.
REQUEST_CHANNELS = ("shell", "control", "stdin")
CHANNELS = ("iopub", *REQUEST_CHANNELS)
COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})
# Messages that are not user activity, and whose status messages do not change a kernel's
# busy/idle state: jupyter_server's untracked_message_types, in its order (lab's page config
# hands the list to the frontend).
UNTRACKED_MESSAGE_TYPES = (
    "comm_info_request", "comm_info_reply", "kernel_info_request", "kernel_info_reply", "shutdown_request",
    "shutdown_reply", "interrupt_request", "interrupt_reply", "debug_request", "debug_reply", "stream",
    "display_data", "update_display_data", "execute_input", "execute_result", "error", "status",
    "clear_output", "debug_event", "input_request", "input_reply",
)


class KernelMessage:
    """A Jupyter message: ``channel`` plus raw ``frames``; JSON parts parsed lazily.

    ``frames`` is ``[header, parent_header, metadata, content, *buffers]`` (bytes), exactly the
    parts that follow the signature on the ZMQ wire. Build one from those frames
    (:meth:`from_frames`) or from Python values (:meth:`from_parts`, which packs them once).
    """

    __slots__ = ("channel", "frames", "header", "_parent_header", "_metadata", "_content", "synthetic")

    def __init__(self, channel: str, frames: list[bytes], header: dict[str, Any] | None = None,
                 *, synthetic: bool = False) -> None:
        if len(frames) < 4:
            raise ValueError(f"a kernel message needs at least 4 frames, got {len(frames)}")
        self.channel = channel
        self.frames = frames
        if header is None:
            header = orjson.loads(frames[0])
            if not isinstance(header, dict):
                raise ValueError("a kernel message header must be a JSON object")
        self.header: dict[str, Any] = header
        self._parent_header: dict[str, Any] | None = None
        self._metadata: dict[str, Any] | None = None
        self._content: dict[str, Any] | None = None
        # True for messages carme made itself (status restarting/dead), not sent by the kernel.
        self.synthetic = synthetic

    @classmethod
    def from_frames(cls, channel: str, frames: Sequence[bytes]) -> KernelMessage:
        """Wrap raw frames (bytes, bytearray or memoryview); parses the header only."""
        return cls(channel, [bytes(f) for f in frames])

    @classmethod
    def from_parts(cls, channel: str, header: dict[str, Any], parent_header: dict[str, Any] | None = None,
                   metadata: dict[str, Any] | None = None, content: dict[str, Any] | None = None,
                   buffers: Sequence[bytes] = (), *, synthetic: bool = False) -> KernelMessage:
        """Build a message from Python values (packing each JSON part once)."""
        parent_header = parent_header or {}
        metadata = metadata or {}
        content = content or {}
        frames = [orjson.dumps(header), orjson.dumps(parent_header), orjson.dumps(metadata),
                  orjson.dumps(content), *(bytes(b) for b in buffers)]
        msg = cls(channel, frames, header, synthetic=synthetic)
        msg._parent_header, msg._metadata, msg._content = parent_header, metadata, content
        return msg

    # -- header fields the server routes on -------------------------------------------------

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def msg_id(self) -> str:
        return str(self.header.get("msg_id", ""))

    @property
    def session(self) -> str:
        """The session id of the client (or kernel) that sent the message."""
        return str(self.header.get("session", ""))

    # -- lazily parsed parts ----------------------------------------------------------------

    @property
    def parent_header(self) -> dict[str, Any]:
        if self._parent_header is None:
            self._parent_header = _load_object(self.frames[1])
        return self._parent_header

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = _load_object(self.frames[2])
        return self._metadata

    @property
    def content(self) -> dict[str, Any]:
        if self._content is None:
            self._content = _load_object(self.frames[3])
        return self._content

    @property
    def buffers(self) -> list[bytes]:
        return self.frames[4:]

    @property
    def parent_msg_type(self) -> str | None:
        value = self.parent_header.get("msg_type")
        return value if isinstance(value, str) else None

    @property
    def parent_msg_id(self) -> str | None:
        value = self.parent_header.get("msg_id")
        return value if isinstance(value, str) else None

    def to_dict(self) -> dict[str, Any]:
        """The message as jupyter_client's dict shape (buffers as bytes), for tests and tools."""
        return {"channel": self.channel, "header": self.header, "msg_id": self.msg_id, "msg_type": self.msg_type,
                "parent_header": self.parent_header, "metadata": self.metadata, "content": self.content,
                "buffers": self.buffers}

    def __repr__(self) -> str:
        return f"<KernelMessage {self.channel} {self.msg_type} {self.msg_id}>"


def _load_object(frame: bytes) -> dict[str, Any]:
    value = orjson.loads(frame) if frame else {}
    return value if isinstance(value, dict) else {}
