"""The ZMQ session: signing, verification of every inbound message, replays, malformed frames;
and the server's own channels against a kernel played by the test on real ZMQ sockets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging

import orjson
import pytest
import zmq
import zmq.asyncio

from carme.kernels.channels import ServerChannels
from carme.kernels.connection import PortPool, new_connection_info
from carme.kernels.message import KernelMessage
from carme.kernels.session import DELIMITER, DigestHistory, Session


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


async def test_server_channels_drop_forged_iopub_and_match_replies() -> None:
    """The test plays the kernel: it binds ROUTERs and a PUB where the connection info says."""
    context = zmq.asyncio.Context()
    key = b"kernel-key"
    with PortPool().holding() as ports:
        info = new_connection_info(ports, "127.0.0.1", key, "fake")
    kernel_sockets = {"shell": context.socket(zmq.ROUTER), "control": context.socket(zmq.ROUTER),
                      "iopub": context.socket(zmq.PUB)}
    for name, sock in kernel_sockets.items():
        sock.bind(f"tcp://127.0.0.1:{info[name + '_port']}")
    kernel_session = Session(key)
    received: list[KernelMessage] = []
    channels = ServerChannels(context, info, Session(key), received.append)
    try:
        # Publish until the SUB has joined (slow joiner), then forged messages, then a good one.
        probe = kernel_session.msg("iopub", "status", {"execution_state": "idle"})
        while not received:
            await kernel_sockets["iopub"].send_multipart(kernel_session.serialize(probe))
            await asyncio.sleep(0.02)
        received.clear()
        forged = Session(b"attacker").msg("iopub", "stream", {"name": "stdout", "text": "forged"})
        await kernel_sockets["iopub"].send_multipart(Session(b"attacker").serialize(forged))
        await kernel_sockets["iopub"].send_multipart([DELIMITER, b"", *forged.frames])  # unsigned
        good = kernel_session.msg("iopub", "stream", {"name": "stdout", "text": "good"})
        await kernel_sockets["iopub"].send_multipart(kernel_session.serialize(good))
        async with asyncio.timeout(10):
            while not received:
                await asyncio.sleep(0.01)
        assert [m.content["text"] for m in received] == ["good"]

        # A request on shell gets the reply whose parent is it; a forged reply is ignored.
        request = channels.session.msg("shell", "kernel_info_request")
        pending = asyncio.ensure_future(channels.request(request, 10))
        identity, *parts = await kernel_sockets["shell"].recv_multipart()
        incoming = kernel_session.deserialize("shell", parts)
        assert incoming is not None and incoming.msg_type == "kernel_info_request"
        fake_reply = Session(b"attacker").msg("shell", "kernel_info_reply", {"status": "forged"}, parent=incoming)
        await kernel_sockets["shell"].send_multipart(Session(b"attacker").serialize(fake_reply, [identity]))
        reply = kernel_session.msg("shell", "kernel_info_reply", {"status": "ok"}, parent=incoming)
        await kernel_sockets["shell"].send_multipart(kernel_session.serialize(reply, [identity]))
        assert (await pending).content == {"status": "ok"}
    finally:
        await channels.close()
        for sock in kernel_sockets.values():
            sock.close(linger=0)
        context.destroy(linger=0)
