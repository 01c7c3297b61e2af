"""The websocket frame codecs against the byte layouts jupyter_server and JupyterLab use."""

from __future__ import annotations

import json
import struct

import pytest

from carme.kernels.frames import (
    V1_SUBPROTOCOL,
    FrameError,
    decode_client_frame,
    decode_legacy,
    decode_v1,
    encode_legacy,
    encode_v1,
    select_subprotocol,
)

HEADER = b'{"msg_id":"m1","msg_type":"execute_request","session":"s1","username":"u","date":"2024","version":"5.3"}'
PARENT = b'{"msg_id":"p0"}'
METADATA = b"{}"
CONTENT = b'{"code":"print(1)","silent":false}'


def v1_frame(channel: bytes, parts: list[bytes]) -> bytes:
    """The v1 layout written out longhand: n, offsets (channel start, channel end, part ends)."""
    n = 2 + len(parts)
    offsets = [8 * (n + 1)]
    offsets.append(offsets[0] + len(channel))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    head = n.to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
    return head + channel + b"".join(parts)


def test_v1_matches_the_jupyterlab_layout() -> None:
    parts = [HEADER, PARENT, METADATA, CONTENT]
    frame = encode_v1(b"shell", parts)
    assert frame == v1_frame(b"shell", parts)
    assert int.from_bytes(frame[:8], "little") == 6
    assert int.from_bytes(frame[8:16], "little") == 56  # offset_0 = 8 * (n + 1), as observed from JupyterLab
    assert decode_v1(frame) == ("shell", parts)


def test_v1_buffers_round_trip() -> None:
    parts = [HEADER, PARENT, METADATA, CONTENT, b"\x00\x01\x02", b"", b"x" * 1000]
    frame = encode_v1(b"iopub", parts)
    assert frame == v1_frame(b"iopub", parts)
    assert decode_v1(frame) == ("iopub", parts)


@pytest.mark.parametrize("frame", [
    b"",
    (3).to_bytes(8, "little"),  # too few offsets for a message
    (6).to_bytes(8, "little") + b"\x00" * 8,  # offsets past the end
    v1_frame(b"shell", [HEADER, PARENT, METADATA, CONTENT])[:-3],  # truncated
])
def test_v1_rejects_malformed_frames(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode_v1(frame)


def test_legacy_text_is_the_message_json() -> None:
    text = encode_legacy(b"iopub", [HEADER, PARENT, METADATA, CONTENT], "m1", "execute_request")
    assert isinstance(text, str)
    msg = json.loads(text)
    assert msg == {"header": json.loads(HEADER), "parent_header": {"msg_id": "p0"}, "metadata": {},
                   "content": json.loads(CONTENT), "buffers": [], "channel": "iopub", "msg_id": "m1",
                   "msg_type": "execute_request"}


def test_legacy_binary_layout_with_buffers() -> None:
    frame = encode_legacy(b"iopub", [HEADER, PARENT, METADATA, CONTENT, b"abc", b"\xff" * 5], "m1", "display_data")
    assert isinstance(frame, bytes)
    # [nbufs u32 BE][offsets u32 BE, one per part][JSON][buffers]; nbufs counts the JSON part
    (count,) = struct.unpack(">I", frame[:4])
    assert count == 3
    offsets = struct.unpack(">3I", frame[4:16])
    assert offsets[0] == 16
    body = json.loads(frame[offsets[0]:offsets[1]])
    assert "buffers" not in body and body["channel"] == "iopub" and body["msg_type"] == "display_data"
    assert frame[offsets[1]:offsets[2]] == b"abc"
    assert frame[offsets[2]:] == b"\xff" * 5
    channel, parts = decode_legacy(frame)
    assert channel == "iopub"
    assert [json.loads(p) for p in parts[:4]] == [json.loads(p) for p in (HEADER, PARENT, METADATA, CONTENT)]
    assert parts[4:] == [b"abc", b"\xff" * 5]


def test_legacy_client_text_message() -> None:
    text = json.dumps({"header": json.loads(HEADER), "parent_header": {}, "metadata": {},
                       "content": {"code": "1"}, "channel": "shell", "buffers": []})
    channel, parts = decode_legacy(text)
    assert channel == "shell"
    assert json.loads(parts[0]) == json.loads(HEADER)
    assert json.loads(parts[3]) == {"code": "1"} and len(parts) == 4


def test_client_frames_channel_rules(caplog: pytest.LogCaptureFixture) -> None:
    no_channel = json.dumps({"header": {"msg_id": "a", "msg_type": "kernel_info_request"}, "content": {}})
    assert decode_client_frame(no_channel, v1=False) is not None
    assert decode_client_frame(no_channel, v1=False)[0] == "shell"  # type: ignore[index]
    assert "without a channel" in caplog.text
    unknown = json.dumps({"header": {"msg_id": "a"}, "content": {}, "channel": "nope"})
    assert decode_client_frame(unknown, v1=False) is None
    assert decode_client_frame(v1_frame(b"bogus", [HEADER, PARENT, METADATA, CONTENT]), v1=True) is None
    assert decode_client_frame("not json", v1=False) is None
    assert decode_client_frame("{}", v1=True) is None  # text on the binary protocol
    assert decode_client_frame(v1_frame(b"control", [HEADER, PARENT, METADATA, CONTENT]), v1=True) == (
        "control", [HEADER, PARENT, METADATA, CONTENT])


def test_subprotocol_selection() -> None:
    assert select_subprotocol([V1_SUBPROTOCOL]) == V1_SUBPROTOCOL
    assert select_subprotocol(["other", V1_SUBPROTOCOL]) == V1_SUBPROTOCOL
    assert select_subprotocol([]) is None
    assert select_subprotocol(["other"]) is None
