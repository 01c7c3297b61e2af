"""The ZMQ session: signing, verification of every inbound message, replays, malformed frames;
and the server's own channels against a real kernel that forges messages."""

from __future__ import annotations

import hashlib
import hmac
import logging

import orjson
import pytest

from carme.kernels.message import KernelMessage
from carme.kernels.session import DELIMITER, DigestHistory, Session
from carme.server import Server

from .zmqclient import execute, execute_request


def test_signature_is_hmac_sha256_over_the_four_json_frames_only() -> None:
    session = Session(b"secret-key")
    msg = session.msg("shell", "execute_request", {"code": "1"}, buffers=[b"\x00buffer"])
    wire = session.serialize(msg, identities=[b"client"])
    assert wire[:2] == [b"client", DELIMITER]
    expected = hmac.new(b"secret-key", b"".join(msg.frames[:4]), hashlib.sha256).hexdigest().encode()
    assert wire[2] == expected
    assert wire[3:] == msg.frames and wire[-1] == b"\x00buffer"
    header = orjson.loads(wire[3])
    assert set(header) == {"msg_id", "msg_type", "username", "session", "date", "version"}
    assert header["version"] == "5.3" and header["date"].endswith("Z") and header["session"] == session.session_id


@pytest.mark.parametrize("size", [1, 36, 63, 64, 65, 200])
def test_the_signature_is_hmacs_for_keys_shorter_and_longer_than_a_block(size: int) -> None:
    # Session makes HMAC-SHA256 from its own pads (RFC 2104); a key over 64 bytes is hashed first.
    key = bytes(range(1, size + 1))
    session = Session(key)
    msg = session.msg("iopub", "stream", {"name": "stdout", "text": "é" * size})
    assert session.sign(msg.frames) == hmac.new(key, b"".join(msg.frames[:4]), hashlib.sha256).hexdigest().encode()


def test_inbound_messages_are_verified(caplog: pytest.LogCaptureFixture) -> None:
    session = Session(b"k")
    msg = session.msg("iopub", "stream", {"name": "stdout", "text": "hi"})
    good = session.serialize(msg, identities=[b"topic"])
    parsed = session.deserialize("iopub", good)
    assert isinstance(parsed, KernelMessage)
    assert parsed.msg_type == "stream" and parsed.content == {"name": "stdout", "text": "hi"}
    forged = Session(b"other key").serialize(msg)
    tampered = list(good)
    tampered[-1] = orjson.dumps({"name": "stdout", "text": "evil"})
    with caplog.at_level(logging.WARNING, logger="carme.kernels.session"):
        assert session.deserialize("iopub", forged) is None
        assert session.deserialize("iopub", tampered) is None
        assert session.deserialize("shell", [b"no delimiter", b"x"]) is None
        assert session.deserialize("shell", [DELIMITER, b"sig", b"{}", b"{}"]) is None
        unsigned_bad_header = Session(b"").serialize([b"[1]", b"{}", b"{}", b"{}"])
        assert Session(b"").deserialize("shell", unsigned_bad_header) is None
    text = caplog.text
    assert text.count("bad signature") == 2 and "delimiter" in text and "frames" in text and "header" in text


def test_a_replayed_signature_is_dropped_when_history_is_kept() -> None:
    session = Session(b"k")
    wire = session.serialize(session.msg("iopub", "status", {"execution_state": "idle"}))
    history = DigestHistory(size=2)
    assert session.deserialize("iopub", wire, history) is not None
    assert session.deserialize("iopub", wire, history) is None
    for _ in range(2):  # pushed out of the bounded history
        history.add(session.serialize(session.msg("iopub", "status"))[1])
    assert session.deserialize("iopub", wire, history) is not None


def test_lazy_parts_and_malformed_json_parts() -> None:
    msg = KernelMessage.from_frames("iopub", [b'{"msg_type": "x", "msg_id": "1"}', b"", b"[]", b'{"a": 1}', b"buf"])
    assert msg.parent_header == {} and msg.metadata == {} and msg.content == {"a": 1}
    assert msg.buffers == [b"buf"] and msg.parent_msg_type is None
    with pytest.raises(ValueError):
        KernelMessage("shell", [b"{}", b"{}"])


# Run inside the kernel: messages signed with a wrong key (or not at all), sent on the kernel's own
# sockets as a compromised or buggy process on the kernel's ports would.
FORGE = """
k = get_ipython().kernel
s = k.session

def _frames(msg_type, content, parent):
    msg = s.msg(msg_type, content, parent=parent)
    return [s.pack(msg[key]) for key in ("header", "parent_header", "metadata", "content")]

def forge_iopub(text):
    frames = _frames("stream", {"name": "stdout", "text": text}, k.get_parent("shell"))
    for signature in (b"0" * 64, b""):  # a wrong signature, none
        k.iopub_socket.send_multipart([b"stream", b"<IDS|MSG>", signature, *frames])

def forge_reply():
    parent = k.get_parent("shell")
    frames = _frames("execute_reply", {"status": "forged"}, parent)
    k.shell_stream.send_multipart([*k._parent_ident["shell"], b"<IDS|MSG>", b"0" * 64, *frames])
"""


@pytest.mark.asyncio(loop_scope="module")
async def test_server_channels_drop_forged_iopub_and_forged_replies(kserver: Server) -> None:
    """A real kernel sends the server badly signed iopub messages and a badly signed reply to a
    pending request: subscribers never see the former, the request gets the genuine reply."""
    kernel = await kserver.kernels.start_kernel()
    try:
        assert (await execute(kernel, FORGE)).reply.content["status"] == "ok"
        ran = await execute(kernel, "forge_iopub('forged')\nprint('signed')")
        assert ran.stdout == "signed\n"

        channels = kernel._channels
        assert channels is not None
        request = execute_request(kernel, "forge_reply()")
        reply = await channels.request(request, 30)
        assert reply.msg_type == "execute_reply" and reply.content["status"] == "ok"
    finally:
        await kserver.kernels.shutdown_kernel(kernel.id)
