"""Kernel lifecycle with a real ipykernel: start, kernel_info, execute, interrupt, restart,
kill -9 and heartbeat loss with auto-restart, giving up, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
import zmq

from carme.kernels.connection import RECONNECT_MS
from carme.kernels.kernel import Kernel, KernelStartError
from carme.kernels.manager import NoSuchKernel
from carme.server import Server

from tests.polling import await_until
from tests.processes import pid_alive

from .zmqclient import Collector, execute, recv_reply

pytestmark = pytest.mark.asyncio(loop_scope="module")

STUBBORN = Path(__file__).with_name("stubborn_kernel.py")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def kernel(kserver: Server) -> Kernel:
    # A notebook in a folder that does not exist yet: the kernel starts in the nearest existing one.
    return await kserver.kernels.start_kernel("python3", "sub/deeper/missing/nb.ipynb")


async def test_connection_file_is_private_and_kernel_info_answers_any_client(kernel: Kernel) -> None:
    from jupyter_client.asynchronous.client import AsyncKernelClient

    files = list(Path(kernel.provisioner.connection_file).parent.glob(f"kernel-{kernel.id}.json"))  # type: ignore[attr-defined]
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    info = json.loads(files[0].read_text())
    assert info["signature_scheme"] == "hmac-sha256" and info["key"] == kernel.session.key.decode()
    assert kernel.kernel_info["status"] == "ok"
    assert kernel.execution_state == "idle"
    # An independent client (jupyter_client) that only knows the connection file.
    client = AsyncKernelClient()
    client.load_connection_file(str(files[0]))
    client.start_channels()
    try:
        reply = await client.kernel_info(reply=True, timeout=30)
    finally:
        client.stop_channels()
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["language_info"]["name"] == "python"


async def test_execute_streams_output_to_subscribers_from_the_notebook_folder(kernel: Kernel, kserver: Server
                                                                                ) -> None:
    ran = await execute(kernel, "import os; print(os.getcwd())")  # returns once the kernel is idle again
    assert ran.reply.content["status"] == "ok"
    assert ran.stdout.strip() == str(kserver.root_dir / "sub" / "deeper")
    assert kernel.execution_state == "idle"


async def test_on_flush_ends_every_batch_before_anything_else_runs(kernel: Kernel) -> None:
    """Subscribers may hold per-message work until ``on_flush`` (the relay holds websocket frames):
    the kernel flushes after the messages it delivered in one go, before the event loop runs
    anything else, so a task running between them never sees a message unflushed."""
    unflushed: list[str] = []
    seen_unflushed: list[list[str]] = []
    batches: list[int] = []

    def on_message(msg: object) -> None:
        unflushed.append(repr(msg))

    def on_flush() -> None:
        batches.append(len(unflushed))
        unflushed.clear()

    async def look() -> None:
        while True:
            if unflushed:
                seen_unflushed.append(list(unflushed))
            await asyncio.sleep(0)

    removers = [kernel.subscribe(on_message), kernel.on_flush(on_flush)]
    watcher = asyncio.ensure_future(look())
    try:
        ran = await execute(kernel, "for i in range(2000):\n    print(i, flush=True)")
    finally:
        watcher.cancel()
        for remove in removers:
            remove()
    assert ran.stdout.split() == [str(i) for i in range(2000)]
    assert seen_unflushed == [] and unflushed == []
    assert sum(batches) >= 2000 and all(batches)  # every message, each in a batch that was flushed


async def test_last_activity_counts_user_work_not_housekeeping(kernel: Kernel) -> None:
    """As jupyter_server: kernel_info (and its busy/idle status) is not activity; execute is."""
    collector = Collector(kernel)
    sock = kernel.connect("shell", b"activity")
    try:
        before = kernel.last_activity
        request = kernel.session.msg("shell", "kernel_info_request")
        await sock.send_multipart(kernel.session.serialize(request))
        await recv_reply(kernel, sock, request.msg_id)
        await await_until(lambda: "idle" in [m.content["execution_state"]
                                          for m in collector.of_type("status", request.msg_id)], what="idle")
        assert kernel.last_activity == before and kernel.execution_state == "idle"
        await execute(kernel, "pass")
        assert kernel.last_activity > before
    finally:
        sock.close(linger=0)
        collector.unsubscribe()


async def test_a_late_starting_status_is_neither_activity_nor_the_state(kernel: Kernel, tmp_path: Path) -> None:
    """ipykernel can publish its parentless "starting" status late, after messages of a running
    cell: the kernel stays busy and idle since its last real work (or the culler spares it)."""
    collector = Collector(kernel)
    sock = kernel.connect("shell", b"late-starting")
    go = tmp_path / "go"
    code = (f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
            "k = get_ipython().kernel\n"
            "k.session.send(k.iopub_socket, 'status', {'execution_state': 'starting'}, parent={}, "
            "ident=k._topic('status'))\n"
            f"while os.path.exists({str(go)!r}): time.sleep(0.01)")
    try:
        request = kernel.session.msg("shell", "execute_request", {"code": code, "silent": False})
        await sock.send_multipart(kernel.session.serialize(request))
        await await_until(lambda: kernel.execution_state == "busy" and collector.of_type("execute_input", request.msg_id),
                          what="the cell to start")
        long_ago = kernel.last_activity - timedelta(seconds=120)
        kernel.last_activity = long_ago
        go.touch()
        await await_until(lambda: [m for m in collector.of_type("status") if not m.parent_msg_id
                                   and m.content["execution_state"] == "starting"], what="the late starting status")
        assert kernel.last_activity == long_ago and kernel.execution_state == "busy"
        go.unlink()
        assert (await recv_reply(kernel, sock, request.msg_id)).content["status"] == "ok"
    finally:
        sock.close(linger=0)
        collector.unsubscribe()


async def test_interrupt_stops_a_long_sleep(kernel: Kernel, kserver: Server) -> None:
    collector = Collector(kernel)
    sock = kernel.connect("shell", b"interrupter")
    try:
        request = kernel.session.msg("shell", "execute_request", {"code": "import time; time.sleep(60)",
                                                                   "silent": False})
        await sock.send_multipart(kernel.session.serialize(request))
        await await_until(lambda: kernel.execution_state == "busy" and collector.of_type("execute_input", request.msg_id),
                       what="the sleep to start")
        await kserver.kernels.interrupt_kernel(kernel.id)
        reply = await recv_reply(kernel, sock, request.msg_id, timeout=30)
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == "KeyboardInterrupt"
    finally:
        sock.close(linger=0)
        collector.unsubscribe()


async def test_a_forged_request_is_ignored_and_a_signed_one_answered(kernel: Kernel) -> None:
    sock = kernel.connect("shell", b"forger")
    try:
        forged = kernel.session.msg("shell", "kernel_info_request")
        frames = kernel.session.serialize(forged)
        frames[1] = b"0" * 64  # the signature frame
        await sock.send_multipart(frames)
        good = kernel.session.msg("shell", "kernel_info_request")
        await sock.send_multipart(kernel.session.serialize(good))
        seen = []
        while True:
            msg = kernel.session.deserialize("shell", await asyncio.wait_for(sock.recv_multipart(), 30))
            assert msg is not None
            seen.append(msg.parent_msg_id)
            if msg.parent_msg_id == good.msg_id:
                break
        assert forged.msg_id not in seen
    finally:
        sock.close(linger=0)


async def test_restart_keeps_id_ports_and_connected_sockets(kernel: Kernel, kserver: Server) -> None:
    before_pid, before_info = kernel.pid, dict(kernel.connection_info)
    events: list[str] = []
    remove = kernel.on_lifecycle(events.append)
    sock = kernel.connect("shell", b"survivor")  # opened before the restart, used after it
    assert sock.getsockopt(zmq.RECONNECT_IVL) == RECONNECT_MS  # back soon after the new process binds
    try:
        await execute(kernel, "marker = 1")
        restarted = await kserver.kernels.restart_kernel(kernel.id)
        assert restarted is kernel and kserver.kernels.get(kernel.id) is kernel
        assert kernel.pid != before_pid and not pid_alive(before_pid)  # type: ignore[arg-type]
        assert kernel.connection_info == before_info
        assert events == ["restarted"]
        request = kernel.session.msg("shell", "execute_request", {"code": "marker", "silent": False})
        await sock.send_multipart(kernel.session.serialize(request))
        reply = await recv_reply(kernel, sock, request.msg_id)
        assert reply.content["status"] == "error" and reply.content["ename"] == "NameError"  # a fresh process
    finally:
        sock.close(linger=0)
        remove()


async def test_kill_9_is_noticed_and_the_kernel_restarts(kernel: Kernel) -> None:
    collector = Collector(kernel)
    events: list[str] = []
    remove = kernel.on_lifecycle(events.append)
    old_pid = kernel.pid
    assert old_pid is not None
    try:
        os.kill(old_pid, signal.SIGKILL)
        restarting = await await_until(
            lambda: [m for m in collector.of_type("status") if m.content["execution_state"] == "restarting"],
            what="a restarting status")
        assert restarting[0].synthetic and restarting[0].parent_header == {}
        await await_until(lambda: "restarted" in events, what="the restart")
        await kernel.wait_ready()
        assert kernel.pid != old_pid and kernel.execution_state == "idle"
        assert (await execute(kernel, "1 + 1")).reply.content["status"] == "ok"
    finally:
        remove()
        collector.unsubscribe()


async def test_a_frozen_kernel_is_restarted_when_the_heartbeat_stops(kernel: Kernel) -> None:
    kernel.options.heartbeat_timeout = 2.0
    events: list[str] = []
    remove = kernel.on_lifecycle(events.append)
    old_pid = kernel.pid
    assert old_pid is not None
    try:
        os.kill(old_pid, signal.SIGSTOP)  # alive, but answers nothing
        await await_until(lambda: "restarted" in events, timeout=60, what="a restart after heartbeat loss")
        assert kernel.pid != old_pid and not pid_alive(old_pid)
        assert (await execute(kernel, "2 + 2")).reply.content["status"] == "ok"
    finally:
        kernel.options.heartbeat_timeout = 30.0
        remove()


async def test_a_kernel_dying_at_launch_is_retried_and_message_interrupts_work(kserver: Server,
                                                                                 tmp_path: Path) -> None:
    """The first launch dies at once (as when another process took a port): carme relaunches it
    on fresh ports. The spec asks for interrupts as interrupt_request messages on control."""
    marker = tmp_path / "launched-once"
    spec_dir = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "second-time"
    spec_dir.mkdir(parents=True)
    script = (f"import pathlib, sys\nmarker = pathlib.Path({str(marker)!r})\n"
              "if not marker.exists():\n    marker.write_text(pathlib.Path(sys.argv[-1]).read_text())\n    sys.exit(1)\n"
              "from ipykernel.kernelapp import launch_new_instance\nlaunch_new_instance()\n")
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, "-c", script, "-f", "{connection_file}"], "display_name": "Second time",
         "language": "python", "interrupt_mode": "message"}))
    kernel = await kserver.kernels.start_kernel("second-time")
    try:
        first = json.loads(marker.read_text())  # the connection file of the launch that died
        assert first["key"] == kernel.connection_info["key"]
        assert first["shell_port"] != kernel.connection_info["shell_port"]  # relaunched on fresh ports
        sock = kernel.connect("shell", b"msg-interrupt")
        collector = Collector(kernel)
        request = kernel.session.msg("shell", "execute_request", {"code": "import time; time.sleep(60)"})
        await sock.send_multipart(kernel.session.serialize(request))
        await await_until(lambda: collector.of_type("execute_input", request.msg_id), what="the sleep to start")
        await kserver.kernels.interrupt_kernel(kernel.id)
        reply = await recv_reply(kernel, sock, request.msg_id, timeout=30)
        assert reply.content["ename"] == "KeyboardInterrupt"
        sock.close(linger=0)
        collector.unsubscribe()
    finally:
        await kserver.kernels.shutdown_kernel(kernel.id)


async def test_a_kernel_that_keeps_dying_is_declared_dead(kserver: Server, tmp_path: Path) -> None:
    marker = tmp_path / "broken"
    spec_dir = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "flaky"
    spec_dir.mkdir(parents=True)
    script = (f"import os, sys\nif os.path.exists({str(marker)!r}): sys.exit(7)\n"
              "from ipykernel.kernelapp import launch_new_instance\nlaunch_new_instance()\n")
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, "-c", script, "-f", "{connection_file}"], "display_name": "Flaky",
         "language": "python"}))
    kernel = await kserver.kernels.start_kernel("flaky")
    kernel.options.restart_limit = 2
    collector = Collector(kernel)
    events: list[str] = []
    kernel.on_lifecycle(events.append)
    stopped: list[str] = []
    kserver.plugins.register(StoppedRecorder(stopped), name="stopped-recorder")
    try:
        marker.touch()
        pid = kernel.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await await_until(lambda: "dead" in events, timeout=60, what="the kernel to be declared dead")
        assert collector.statuses()[-2:] == ["restarting", "dead"]
        assert kernel.execution_state == "dead" and "exited with code 7" in (kernel.reason or "")
        assert "connection_file" not in kernel.model() and kernel.model()["reason"] == kernel.reason
        await await_until(lambda: kernel.id in stopped, what="carme_on_kernel_stopped")
        with pytest.raises(NoSuchKernel):
            kserver.kernels.get(kernel.id)
        assert not Path(kernel.provisioner.connection_file).exists()  # type: ignore[attr-defined]
    finally:
        kserver.plugins.pm.unregister(name="stopped-recorder")


async def test_a_kernel_that_cannot_start_raises_and_leaves_nothing(kserver: Server) -> None:
    spec_dir = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "nostart"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, "-c", "raise SystemExit(3)", "{connection_file}"], "display_name": "No"}))
    count = len(kserver.kernels)
    with pytest.raises(KernelStartError, match="exited with code 3"):
        await kserver.kernels.start_kernel("nostart")
    assert len(kserver.kernels) == count
    runtime = kserver.kernels.runtime_dir
    assert {p.name for p in runtime.glob("kernel-*.json")} == {f"kernel-{k.id}.json" for k in kserver.kernels}


async def test_a_kernel_lifecycle_leaves_no_process_file_or_descriptor(kserver: Server, kernel: Kernel) -> None:
    """Shutdown stops the process and removes the connection file; and every socket carme opens
    is closed (jupyter_server leaked FDs per kernel start/stop). A kernel of its own: the shared
    one (started before ``before``) stays up for the other tests, whatever their order."""
    def open_fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    before = open_fds()
    kernel = await kserver.kernels.start_kernel()
    clients = [kernel.connect(channel, b"fd-test") for channel in ("shell", "control", "stdin", "iopub")]
    await execute(kernel, "1")
    await kserver.kernels.restart_kernel(kernel.id)
    clients[0].close(linger=0)  # one closed by its owner, the others at shutdown
    pid, connection_file = kernel.pid, Path(kernel.provisioner.connection_file)  # type: ignore[attr-defined]
    assert pid is not None and pid_alive(pid) and connection_file.exists()
    events: list[str] = []
    kernel.on_lifecycle(events.append)
    await kserver.kernels.shutdown_kernel(kernel.id)
    assert not pid_alive(pid) and not connection_file.exists()
    assert all(sock.closed for sock in clients)
    assert events == ["shutdown"] and kernel.execution_state == "dead"
    with pytest.raises(NoSuchKernel, match=f"Kernel does not exist: {kernel.id}"):
        kserver.kernels.get(kernel.id)

    def described(fds: set[str]) -> list[str]:
        return [f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}" for fd in sorted(fds) if os.path.exists(f"/proc/self/fd/{fd}")]

    try:
        await await_until(lambda: not (open_fds() - before), "the kernel's fds to be closed", timeout=10)
    except AssertionError:
        raise AssertionError(f"left open: {described(open_fds() - before)}") from None


class StoppedRecorder:
    def __init__(self, stopped: list[str]) -> None:
        self.stopped = stopped

    from carme.hooks import hookimpl

    @hookimpl
    def carme_on_kernel_stopped(self, server: Server, kernel: Kernel) -> None:
        self.stopped.append(kernel.id)


@pytest.mark.parametrize(("mode", "stopped_by"), [("term", signal.SIGTERM), ("ignore", signal.SIGKILL)])
async def test_a_kernel_ignoring_shutdown_request_gets_sigterm_then_sigkill(
        kserver: Server, tmp_path: Path, mode: str, stopped_by: int) -> None:
    """Shutdown asks politely on control first; a kernel that does not stop gets SIGTERM at half
    the shutdown_wait_time, and one that ignores SIGTERM too gets SIGKILL. Nothing is left."""
    marker = tmp_path / "control-messages"
    spec_dir = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / f"stubborn-{mode}"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, str(STUBBORN), str(marker), mode, "{connection_file}"],
         "display_name": "Stubborn", "language": "python"}))
    kernel = await kserver.kernels.start_kernel(f"stubborn-{mode}")
    assert kernel.kernel_info["implementation"] == "stubborn"
    process = kernel.provisioner.process  # type: ignore[attr-defined]
    connection_file = Path(kernel.provisioner.connection_file)  # type: ignore[attr-defined]
    await kserver.kernels.shutdown_kernel(kernel.id)
    assert process.returncode == -stopped_by
    assert marker.read_text().splitlines() == ["shutdown_request"]  # asked first, and ignored it
    assert not pid_alive(process.pid) and not connection_file.exists()
