"""A restarting kernel says so until it is ready again: its execution_state is ``restarting`` from
the moment a restart begins (asked for, or after a death) until kernel_info answers, whatever
status messages the old or the new process publishes meanwhile; never ``idle`` before
``restarted``. Real ipykernel processes."""

from __future__ import annotations

import os
import signal

import pytest

from carme.kernels.message import KernelMessage
from carme.server import Server
from tests.polling import await_until

from .zmqclient import execute

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_restarting_kernel_is_never_idle_before_it_is_ready(kserver: Server) -> None:
    kernel = await kserver.kernels.start_kernel("python3")
    seen: list[tuple[str, str]] = []  # (status message or lifecycle event, execution_state then)

    def on_status(msg: KernelMessage) -> None:
        if msg.msg_type == "status":
            seen.append((f"status {msg.content.get('execution_state')}", kernel.execution_state))

    unsubscribe = kernel.subscribe(on_status)
    remove = kernel.on_lifecycle(lambda event: seen.append((event, kernel.execution_state)))
    try:
        await execute(kernel, "pass")
        seen.clear()
        await kserver.kernels.restart_kernel(kernel.id)  # asked for
        assert seen[-1] == ("restarted", "idle")
        during = seen[:-1]
        assert during and all(state == "restarting" for _, state in during), during

        seen.clear()
        pid = kernel.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # after a death
        await await_until(lambda: ("restarted", "idle") in seen, "the automatic restart")
        # The restart begins when the monitor notices the death (its synthetic status). Before
        # that the new process of the restart above may still be heard, idle: under load its
        # answers to repeated kernel_info requests come late.
        events = [event for event, _ in seen]
        during = seen[events.index("status restarting"):events.index("restarted")]
        assert during and all(state == "restarting" for _, state in during), seen
        assert kernel.execution_state == "idle"
    finally:
        remove()
        unsubscribe()
        await kserver.kernels.shutdown_kernel(kernel.id)
