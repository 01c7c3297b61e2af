"""carme.kernels.zmqio: a socket group never loses sight of a message that arrived, whatever the
group did on the socket meanwhile. Real ZMQ sockets over TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import select
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from carme.kernels.zmqio import SocketGroup
from tests.polling import DEADLINE_S


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket[Any], zmq.Socket[Any]]]:
    """(a ROUTER standing for a kernel's shell, a client's DEALER connected to it)."""
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.SNDHWM, 0)  # sends below never wait: the test decides when the loop runs
    dealer.connect(f"tcp://127.0.0.1:{port}")
    try:
        yield router, dealer
    finally:
        dealer.close(linger=0)
        router.close(linger=0)
        context.term()


def readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


async def test_a_reply_that_arrives_while_the_client_sends_is_read(
        pair: tuple[zmq.Socket[Any], zmq.Socket[Any]]) -> None:
    """A send processes the socket's pending commands, "a message arrived" among them, and takes
    the file descriptor's signal for it: the group must notice that message all the same (a
    JupyterLab page sending its next requests right after kernel_info never got the reply)."""
    router, dealer = pair
    group = SocketGroup(asyncio.get_running_loop())
    group.add(dealer)
    try:
        await group.send(dealer, [b"first request"])
        assert router.poll(int(DEADLINE_S * 1000)), "the request never reached the router"
        identity, _ = router.recv_multipart()
        while group.recv(dealer) is not None:  # nothing yet: the group now waits for the FD
            pass
        assert not group.ready

        router.send_multipart([identity, b"the reply"])
        fd = dealer.get(zmq.FD)
        assert readable(fd, DEADLINE_S), "the reply never signalled the dealer"
        # The client sends on before the event loop ran; libzmq looks at pending commands on a
        # send at most about once a millisecond, so send until one has taken the FD's signal.
        # Nothing here yields to the loop: its FD callback cannot run in between.
        sent = 0
        while readable(fd, 0):
            await group.send(dealer, [b"next request %d" % sent])
            sent += 1
        await asyncio.wait_for(group.wait(), DEADLINE_S)
        assert group.recv(dealer) == [b"the reply"]
    finally:
        group.remove_all()
