"""The kernel websocket end to end: real ipykernel, real uvicorn, a websockets client.

One server and one kernel are shared by the tests that leave the kernel as they found it; tests
that restart, flood or limit get their own.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.polling import await_until
from tests.serving import Served, serve_isolated

from .wsclient import Client, Msg, stdout

pytestmark = pytest.mark.asyncio(loop_scope="function")

ECHO_COMM = """
import comm
def _echo_target(c, open_msg):
    @c.on_msg
    def _echo(msg):
        c.send({"echo": msg["content"]["data"]}, buffers=[bytes(b)[::-1] for b in msg["buffers"]])
comm.get_comm_manager().register_target("echo", _echo_target)
"""

SEND_RAW = """
def _send_raw(msg_type, content, buffers=(), signature=None):
    k = get_ipython().kernel
    parent = k.get_parent()
    if signature is None:
        k.session.send(k.iopub_socket, msg_type, content, parent=parent, buffers=list(buffers))
    else:
        s = k.session
        msg = s.msg(msg_type, content, parent=parent)
        parts = [s.pack(msg[key]) for key in ("header", "parent_header", "metadata", "content")]
        k.iopub_socket.send_multipart([b"stream", b"<IDS|MSG>", signature, *parts])
"""

def _serve(tmp_path_factory: pytest.TempPathFactory, name: str, **settings: Any) -> Iterator[Served]:
    with serve_isolated(tmp_path_factory.mktemp(name), settings={"kernel_poll_interval": 0.5, **settings}) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory, "main")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server with a small websocket message limit, an iopub message rate limit, no auto-restart,
    and ipykernel started as its kernelspec says (iopub with ZMQ's default send limit).

    The rate window is so long that it never slides during a test: 0.15 msgs/s over 1000 s lets
    exactly 150 messages through, however fast or slow the machine."""
    yield from _serve(tmp_path_factory, "limited", websocket_max_message_size=64 * 1024, iopub_msg_rate_limit=0.15,
                      rate_limit_window=1000.0, restart_limit=0, ipykernel_no_drop=False)


@pytest.fixture(scope="module")
def data_limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server with an iopub data rate limit only: 5 bytes/s over a window that never slides
    during a test, so 5000 bytes of stream messages."""
    yield from _serve(tmp_path_factory, "data-limited", iopub_data_rate_limit=5.0, rate_limit_window=1000.0)


def start_kernel(served: Served, name: str = "python3") -> str:
    with served.client(timeout=60) as http:
        response = http.post("/api/kernels", json={"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def kernel_model(served: Served, kernel_id: str) -> dict[str, Any]:
    with served.client(timeout=60) as http:
        return dict(http.get(f"/api/kernels/{kernel_id}").json())


@pytest.fixture(scope="module")
def kernel(server: Served) -> str:
    """A kernel shared by the tests that leave it idle."""
    return start_kernel(server)


async def wait_disconnected(served: Served, kernel_id: str) -> None:
    await await_until(lambda: kernel_model(served, kernel_id)["connections"] == 0, "the client to be disconnected")


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "legacy"])
async def test_execute_streams_output(server: Served, kernel: str, v1: bool) -> None:
    client = await Client.open(server.ws_url, kernel, v1=v1)
    try:
        iopub, reply = await client.execute("for i in range(3): print('line', i)")
        assert reply.msg_type == "execute_reply" and reply.content["status"] == "ok"
        assert stdout(iopub) == "line 0\nline 1\nline 2\n"
        assert [m.msg_type for m in iopub][0] == "status"
        info = await client.send("shell", "kernel_info_request", {})
        replies = await client.until(lambda m: m.parent_id == info and m.channel == "shell")
        assert replies[-1].content["implementation"] == "ipython"
    finally:
        await client.close()


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "legacy"])
async def test_binary_buffers_both_directions(server: Served, kernel: str, v1: bool) -> None:
    client = await Client.open(server.ws_url, kernel, v1=v1)
    try:
        _, reply = await client.execute(ECHO_COMM + SEND_RAW)
        assert reply.content["status"] == "ok", reply.content
        # kernel -> client: display_data carrying binary buffers
        iopub, _ = await client.execute(
            "_send_raw('display_data', {'data': {'text/plain': 'bin'}, 'metadata': {}, 'transient': {}},"
            " [b'\\x00\\x01\\xff', b'second'])")
        shown = [m for m in iopub if m.msg_type == "display_data"]
        assert len(shown) == 1 and shown[0].buffers == [b"\x00\x01\xff", b"second"]
        # client -> kernel: comm messages with buffers, echoed back reversed
        comm_id = uuid.uuid4().hex
        await client.send("shell", "comm_open", {"comm_id": comm_id, "target_name": "echo", "data": {}})
        payload = bytes(range(256)) * 4
        sent = await client.send("shell", "comm_msg", {"comm_id": comm_id, "data": {"n": 1}}, buffers=[payload, b"ab"])
        echoed = await client.until(lambda m: m.msg_type == "comm_msg" and m.parent_id == sent)
        assert echoed[-1].content["data"] == {"echo": {"n": 1}}
        assert echoed[-1].buffers == [payload[::-1], b"ba"]
    finally:
        await client.close()


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "legacy"])
async def test_input_goes_to_the_asking_client(server: Served, kernel: str, v1: bool) -> None:
    client = await Client.open(server.ws_url, kernel, v1=v1)
    try:
        msg_id = await client.send("shell", "execute_request", {
            "code": "answer = input('name? ')\nprint('hello', answer)", "silent": False, "store_history": False,
            "user_expressions": {}, "allow_stdin": True})
        asked = await client.until(lambda m: m.channel == "stdin")
        assert asked[-1].msg_type == "input_request" and asked[-1].content["prompt"] == "name? "
        await client.send("stdin", "input_reply", {"value": "carme"})
        iopub, reply = await client.collect(msg_id)
        assert reply.content["status"] == "ok"
        assert "hello carme\n" in stdout(iopub)
    finally:
        await client.close()


async def test_two_clients_replies_to_sender_iopub_to_all(server: Served, kernel: str) -> None:
    first = await Client.open(server.ws_url, kernel, v1=True)
    second = await Client.open(server.ws_url, kernel, v1=False)
    try:
        assert kernel_model(server, kernel)["connections"] == 2
        iopub, reply = await first.execute("print('from first')")
        assert stdout(iopub) == "from first\n"
        # the second client sees the output of the first one's request, but not its reply
        seen = await second.until(lambda m: m.msg_type == "status" and m.parent_id == reply.parent_id
                                  and m.content["execution_state"] == "idle")
        assert stdout([m for m in seen if m.parent_id == reply.parent_id]) == "from first\n"
        info = await second.send("shell", "kernel_info_request", {})
        upto_own_reply = await second.until(lambda m: m.parent_id == info and m.channel == "shell")
        # the kernel answered the first client's request before this one: misrouted, it would be here
        assert all(m.channel == "iopub" for m in seen + upto_own_reply[:-1])
        assert not [m for m in seen + upto_own_reply if m.channel == "shell" and m.parent_id == reply.parent_id]
    finally:
        await first.close()
        await second.close()


async def print_while_away(served: Served, kernel_id: str, folder: Path, *texts: str) -> tuple[str, str]:
    """Connect, start a cell that prints each of ``texts`` (a message each) only once we are gone,
    leave, let it print.

    Returns (session id, msg_id of the cell); the output is then waiting in the server.
    """
    go = folder / "go"
    code = (f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
            f"for text in {list(texts)!r}: print(text, flush=True)")
    client = await Client.open(served.ws_url, kernel_id)
    msg_id = await client.send("shell", "execute_request", {"code": code, "silent": False, "store_history": False,
                                                            "user_expressions": {}, "allow_stdin": False})
    await client.until(lambda m: m.msg_type == "execute_input" and m.parent_id == msg_id)
    await client.close()
    await wait_disconnected(served, kernel_id)
    go.touch()
    # The server has read the cell's output once it has read its idle status (iopub is in order):
    # the kernel having printed is not enough, its messages may still be on their way.
    await await_until(lambda: kernel_model(served, kernel_id)["execution_state"] == "idle",
                      "the server to have read the cell's output")
    return client.session_id, msg_id


async def test_reconnect_replays_missed_output(server: Served, kernel: str, tmp_path: Path) -> None:
    session, msg_id = await print_while_away(server, kernel, tmp_path, "while away")
    back = await Client.open(server.ws_url, kernel, session_id=session, v1=False)  # protocol may differ
    try:
        iopub, reply = await back.collect(msg_id)
        assert stdout(iopub) == "while away\n"
        assert reply.content["status"] == "ok"
    finally:
        await back.close()


@pytest.fixture(scope="module")
def small_buffers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Output kept for an absent client: at most 5 messages and 3000 bytes."""
    yield from _serve(tmp_path_factory, "small-buffers", buffer_offline_max_messages=5,
                      buffer_offline_max_bytes=3000)


@pytest.fixture(scope="module")
def unbuffered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory, "unbuffered", buffer_offline_messages=False)


async def replayed_lines(served: Served, kernel_id: str, session: str, msg_id: str) -> list[str]:
    """Reconnect as ``session``; the stdout lines of cell ``msg_id`` received up to its idle status."""
    back = await Client.open(served.ws_url, kernel_id, session_id=session)
    try:
        info = await back.send("shell", "kernel_info_request", {})
        await back.until(lambda m: m.parent_id == info and m.channel == "shell")
        await back.wait_for(lambda m: m.parent_id == msg_id and m.msg_type == "status"
                            and m.content["execution_state"] == "idle")
        return [m.content["text"] for m in back.received
                if m.parent_id == msg_id and m.msg_type == "stream" and m.content["name"] == "stdout"]
    finally:
        await back.close()


@pytest.mark.parametrize(("count", "size"), [(200, 10), (50, 1000)], ids=["messages", "bytes"])
async def test_offline_buffer_keeps_the_newest_output_within_its_limits(small_buffers: Served, tmp_path: Path,
                                                                       count: int, size: int) -> None:
    """buffer_offline_max_messages / _max_bytes: the oldest messages are dropped first; what is
    replayed is the newest output, in order, and the cell's end."""
    kernel_id = start_kernel(small_buffers)
    texts = [f"{i:0{size}d}" for i in range(count)]
    session, msg_id = await print_while_away(small_buffers, kernel_id, tmp_path, *texts)
    lines = await replayed_lines(small_buffers, kernel_id, session, msg_id)
    assert 0 < len(lines) < count, len(lines)  # the oldest were dropped
    assert lines == [text + "\n" for text in texts[-len(lines):]]  # the newest kept, in order


async def test_offline_buffering_off_replays_nothing(unbuffered: Served, tmp_path: Path) -> None:
    kernel_id = start_kernel(unbuffered)
    session, msg_id = await print_while_away(unbuffered, kernel_id, tmp_path, "lost", "also lost")
    back = await Client.open(unbuffered.ws_url, kernel_id, session_id=session)
    try:
        info = await back.send("shell", "kernel_info_request", {})
        seen = await back.until(lambda m: m.parent_id == info and m.channel == "shell")
        assert not [m for m in seen if m.parent_id == msg_id]
        iopub, reply = await back.execute("print('live')")  # the session works as a new one
        assert stdout(iopub) == "live\n"
    finally:
        await back.close()


async def test_other_session_discards_missed_output(server: Served, kernel: str, tmp_path: Path) -> None:
    session, msg_id = await print_while_away(server, kernel, tmp_path, "lost")
    other = await Client.open(server.ws_url, kernel)  # a new session: the old buffer is discarded
    try:
        iopub, _ = await other.execute("print('mine')")
        assert stdout(iopub) == "mine\n"
    finally:
        await other.close()
    await wait_disconnected(server, kernel)
    returning = await Client.open(server.ws_url, kernel, session_id=session)
    try:
        info = await returning.send("shell", "kernel_info_request", {})
        seen = await returning.until(lambda m: m.parent_id == info and m.channel == "shell")
        assert not [m for m in seen if m.parent_id == msg_id]
    finally:
        await returning.close()


async def test_same_session_replaces_stale_connection(server: Served, kernel: str) -> None:
    session = uuid.uuid4().hex
    stale = await Client.open(server.ws_url, kernel, session_id=session)
    fresh = await Client.open(server.ws_url, kernel, session_id=session)
    try:
        with pytest.raises(ConnectionClosed):
            while True:  # what was queued for it may still come, then the close
                await stale.recv()
        assert stale.ws.close_code == 1000
        iopub, reply = await fresh.execute("print('fresh')")
        assert stdout(iopub) == "fresh\n" and reply.content["status"] == "ok"
        await await_until(lambda: kernel_model(server, kernel)["connections"] == 1, "one connection")
    finally:
        await fresh.close()
        await stale.close()


async def test_bad_signature_is_never_relayed(server: Served, kernel: str) -> None:
    client = await Client.open(server.ws_url, kernel)
    try:
        _, reply = await client.execute(SEND_RAW)
        assert reply.content["status"] == "ok"
        iopub, _ = await client.execute(
            "_send_raw('stream', {'name': 'stdout', 'text': 'forged'}, signature=b'0' * 64)\n"
            "_send_raw('stream', {'name': 'stdout', 'text': 'signed'})")
        assert stdout(iopub) == "signed"
    finally:
        await client.close()


async def test_unknown_kernel_is_refused_before_upgrade(server: Served) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await Client.open(server.ws_url, "no-such-kernel")
    assert refused.value.response.status_code == 404
    assert b"Kernel does not exist" in refused.value.response.body


async def test_burst_of_20000_reaches_a_slow_client(server: Served, tmp_path: Path) -> None:
    # The plain python3 kernelspec: carme starts ipykernel so that its iopub PUB cannot drop
    # (setting ipykernel_no_drop); what the test counts is then the relay's doing alone.
    kernel_id = start_kernel(server)
    sent = tmp_path / "sent"
    client = await Client.open(server.ws_url, kernel_id, max_queue=4)
    try:
        iopub, _ = await client.execute(SEND_RAW + "import zmq\n"
                                        "print(get_ipython().kernel.iopub_socket.io_thread.socket.get(zmq.SNDHWM))")
        assert stdout(iopub) == "0\n"  # the kernel's PUB cannot drop
        msg_id = await client.send("shell", "execute_request", {
            "code": f"for i in range(20000): _send_raw('stream', {{'name': 'stdout', 'text': f'{{i}}\\n'}})\n"
                    f"open({str(sent)!r}, 'w').close()",
            "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False})
        await await_until(sent.exists, "the kernel to send everything", timeout=60)  # not reading meanwhile: everything piles up server-side
        iopub, reply = await client.collect(msg_id, timeout=60)
        lines = [m.content["text"] for m in iopub if m.msg_type == "stream"]
        assert len(lines) == 20000
        assert lines == [f"{i}\n" for i in range(20000)]
    finally:
        await client.close()


async def test_kill_9_is_seen_as_restarting(server: Served) -> None:
    kernel_id = start_kernel(server)
    client = await Client.open(server.ws_url, kernel_id)
    try:
        _, reply = await client.execute("import os; pid = os.getpid()")
        assert reply.content["status"] == "ok"
        pid = server.app.server.kernels.get(kernel_id).pid
        os.kill(pid, 9)
        states = await client.until(lambda m: m.msg_type == "status" and m.content["execution_state"] == "restarting")
        assert states[-1].parent_header == {}
        await await_until(lambda: kernel_model(server, kernel_id)["execution_state"] == "idle", "idle after the restart")
        iopub, reply = await client.execute("print('back')")  # same websocket after the restart
        assert stdout(iopub) == "back\n" and reply.content["status"] == "ok"
    finally:
        await client.close()


async def test_restart_on_new_ports_rewires_the_clients(server: Served) -> None:
    """The kernel dies and its old shell port is taken before the restart: it comes back on new
    ports, and the same websocket runs code on it (its request sockets were re-opened)."""
    kernel_id = start_kernel(server)
    kernel = server.app.server.kernels.get(kernel_id)
    client = await Client.open(server.ws_url, kernel_id)
    old = dict(kernel.connection_info)
    blocker = socket.socket()
    # The dead kernel's side of its connections lingers in TIME_WAIT on that port; a listener
    # with SO_REUSEADDR may still bind it, and then the kernel's own bind fails.
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken: list[int] = []

    def take_the_shell_port(event: str) -> None:
        # Called in the server's loop after the process died, before the relaunch on the same ports.
        if event == "restarting" and not taken:
            blocker.bind((old["ip"], old["shell_port"]))
            blocker.listen()
            taken.append(old["shell_port"])

    remove = kernel.on_lifecycle(take_the_shell_port)
    try:
        _, reply = await client.execute("pass")
        assert reply.content["status"] == "ok"
        os.kill(kernel.pid, 9)
        await await_until(lambda: kernel_model(server, kernel_id)["execution_state"] == "idle"
                          and kernel.connection_info.get("shell_port") != old["shell_port"], "back on new ports")
        assert taken == [old["shell_port"]]
        iopub, reply = await client.execute("print('moved')")  # the same websocket
        assert stdout(iopub) == "moved\n" and reply.content["status"] == "ok"
        msg_id = await client.send("shell", "execute_request", {
            "code": "print('hi', input('who? '))", "silent": False, "store_history": False,
            "user_expressions": {}, "allow_stdin": True})
        await client.until(lambda m: m.channel == "stdin" and m.msg_type == "input_request")
        await client.send("stdin", "input_reply", {"value": "moved"})
        iopub, reply = await client.collect(msg_id)
        assert "hi moved\n" in stdout(iopub)
    finally:
        remove()
        blocker.close()
        await client.close()


async def test_kernel_that_cannot_restart_is_seen_dead(limited: Served) -> None:
    kernel_id = start_kernel(limited)
    client = await Client.open(limited.ws_url, kernel_id)
    try:
        _, reply = await client.execute("pass")
        os.kill(limited.app.server.kernels.get(kernel_id).pid, 9)
        seen = await client.until(lambda m: m.msg_type == "status" and m.content["execution_state"] == "dead")
        states = [m.content["execution_state"] for m in seen if m.msg_type == "status" and not m.parent_header]
        assert states == ["restarting", "dead"]
        with pytest.raises(ConnectionClosed):
            while True:  # then the server closes the websocket: the kernel is gone
                await client.recv()
        assert client.ws.close_code == 1000
    finally:
        await client.close()


async def test_message_over_the_size_limit_closes_1009(limited: Served) -> None:
    kernel_id = start_kernel(limited)
    client = await Client.open(limited.ws_url, kernel_id)
    iopub, reply = await client.execute("print('small is fine')")
    assert stdout(iopub) == "small is fine\n"
    try:
        await client.send("shell", "execute_request", {"code": "x = '" + "a" * 70_000 + "'", "silent": False})
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await client.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    finally:
        await client.close()


def flooded(iopub: list[Msg]) -> tuple[list[str], list[Msg]]:
    """(the stdout lines delivered, the stderr notices) of a flooding cell."""
    lines = [m.content["text"] for m in iopub if m.msg_type == "stream" and m.content["name"] == "stdout"]
    return lines, [m for m in iopub if m.msg_type == "stream" and m.content["name"] == "stderr"]


async def test_iopub_rate_limit_notice(limited: Served) -> None:
    client = await Client.open(limited.ws_url, start_kernel(limited))
    try:
        _, reply = await client.execute(SEND_RAW)
        iopub, reply = await client.execute(
            "for i in range(400): _send_raw('stream', {'name': 'stdout', 'text': f'{i}\\n'})")
        lines, notices = flooded(iopub)
        assert lines == [f"{i}\n" for i in range(150)]  # the limit, in order; nothing after the notice
        assert len(notices) == 1 and notices[0].content["text"].startswith("IOPub message rate exceeded.")
        assert "ServerApp.iopub_msg_rate_limit=0.15 (msgs/sec)" in notices[0].content["text"]
        assert notices[0].parent_id == reply.parent_id  # shown in the cell that flooded
        assert [m.msg_type for m in iopub if m.channel == "iopub"][-1] == "status"  # idle still arrives
        after, _ = await client.execute("print('after idle')")  # status idle resets the counts
        assert stdout(after) == "after idle\n"
    finally:
        await client.close()


async def test_iopub_data_rate_limit_notice(data_limited: Served) -> None:
    """The data limit counts stream bytes: a cell printing big lines is cut after about 5000 bytes
    with one notice; a cell of small messages of other types is not limited at all."""
    client = await Client.open(data_limited.ws_url, start_kernel(data_limited))
    try:
        iopub, reply = await client.execute("for i in range(100): print(f'{i:03d}' + 'x' * 497, flush=True)")
        texts, notices = flooded(iopub)
        # How ipykernel cuts its output into messages is its own affair (its 0.2 s flush timer can
        # send a line without its newline): the output as a client shows it is what counts.
        shown, printed = "".join(texts), "".join(f"{i:03d}" + "x" * 497 + "\n" for i in range(100))
        assert 0 < len(shown) <= 5000 and printed.startswith(shown)  # the first of it, in order, then cut
        assert len(notices) == 1 and notices[0].content["text"].startswith("IOPub data rate exceeded.")
        assert "ServerApp.iopub_data_rate_limit=5 (bytes/sec)" in notices[0].content["text"]
        assert notices[0].parent_id == reply.parent_id
        # display_data is not stream data: not counted, not dropped.
        shown, _ = await client.execute("for i in range(50): display('y' * 500)")
        assert len([m for m in shown if m.msg_type == "display_data"]) == 50
    finally:
        await client.close()


IOPUB_LIMITS = """
import sys, zmq
own = zmq.Context.instance().socket(zmq.PUB)
own.bind_to_random_port("tcp://127.0.0.1")
print(get_ipython().kernel.iopub_socket.io_thread.socket.get(zmq.SNDHWM), own.get(zmq.SNDHWM),
      {launcher_dir!r} in sys.path)
own.close(0)
"""


@pytest.mark.parametrize("no_drop", [True, False], ids=["no-drop", "as-specified"])
async def test_ipykernel_iopub_send_limit(server: Served, limited: Served, no_drop: bool) -> None:
    """With ipykernel_no_drop (the default) the kernel's iopub has no send limit; the user's own
    sockets keep ZMQ's default and the launcher's folder is not on the kernel's sys.path."""
    from carme.kernels.provisioner import NO_DROP_LAUNCHER

    served = server if no_drop else limited
    client = await Client.open(served.ws_url, start_kernel(served))
    try:
        iopub, reply = await client.execute(IOPUB_LIMITS.format(launcher_dir=str(NO_DROP_LAUNCHER.parent)))
        assert reply.content["status"] == "ok", reply.content
        assert stdout(iopub) == ("0 1000 False\n" if no_drop else "1000 1000 False\n")
    finally:
        await client.close()
