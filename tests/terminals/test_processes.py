"""No process is left: after a delete, a cull, and a server shutdown, every process of the
terminal's session is gone (background jobs, jobs that ignore SIGHUP and stopped jobs too)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.polling import await_until
from tests.processes import describe_processes, pid_alive
from tests.serving import AUTH, Served
from tests.terminals.conftest import TermClient, manager_of, serving

# A background job, one that ignores SIGHUP (nohup), one that ignores SIGHUP and SIGTERM, a
# stopped one, and a foreground one the shell waits for; each prints its pid.
JOBS = ("sleep 1000 & echo PID=$!; "
        "nohup sleep 1000 >/dev/null 2>&1 & echo PID=$!; "
        "(trap '' HUP TERM; exec sleep 1000) & echo PID=$!; "
        "sleep 1000 & echo PID=$!; kill -STOP $!; "
        "echo SHELL=$$; sleep 1000\r")


async def start_jobs(served: Served, name: str) -> list[int]:
    """Start JOBS in terminal ``name``; the pids of the shell and of every job."""
    async with TermClient.open(served, name) as term:
        await term.type(JOBS)
        await term.wait_output(r"SHELL=(\d+)\r\n")
    pids = [int(p) for p in re.findall(r"(?:PID|SHELL)=(\d+)\r\n", term.output)]
    assert len(pids) == 5
    await await_until(lambda: all(pid_alive(pid) for pid in pids), "every job to run")
    return pids


async def test_delete_leaves_no_process(root: Path, new_terminal: Any) -> None:
    async with serving(root) as served:
        name = (await new_terminal(served))["name"]
        pids = await start_jobs(served, name)
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=60) as client:
            assert (await client.delete(f"/api/terminals/{name}")).status_code == 204
        assert [pid for pid in pids if pid_alive(pid)] == []  # gone when the DELETE answers
        assert manager_of(served).list() == []


async def test_delete_tells_attached_browsers(root: Path, new_terminal: Any) -> None:
    async with serving(root) as served:
        name = (await new_terminal(served))["name"]
        async with TermClient.open(served, name) as term:
            await term.wait_message("setup")
            async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=60) as client:
                assert (await client.delete(f"/api/terminals/{name}")).status_code == 204
            assert await term.wait_message("disconnect") == ["disconnect", 1]
            await asyncio.wait_for(term.ws.wait_closed(), 30)
            assert term.ws.close_code == 1000  # final: JupyterLab does not try to reconnect


# Culling runs every 0.1 s with an hour's timeout: a terminal becomes inactive only when the test
# moves its last activity back (no test waits for time to pass).
CULLING = {"terminals.cull_inactive_timeout": 3600.0, "terminals.cull_interval": 0.1}


def age(terminal: Any) -> None:
    terminal.last_activity -= timedelta(hours=2)


async def culled(manager: Any, name: str, also: tuple[str, ...] = ()) -> None:
    """Age terminal ``name`` (and ``also``) until the culler has taken it (aged again on each
    look: a prompt printed late counts as activity)."""
    def gone() -> bool:
        for other in also:
            age(manager.get(other))
        terminal = manager.terminals.get(name)
        if terminal is not None:
            age(terminal)
        return terminal is None

    await await_until(gone, f"terminal {name} to be culled")


async def test_culling_leaves_no_process(root: Path, new_terminal: Any) -> None:
    async with serving(root, **CULLING) as served:
        manager = manager_of(served)
        quiet = (await new_terminal(served))["name"]
        watched = (await new_terminal(served))["name"]
        pids = await start_jobs(served, quiet)
        async with TermClient.open(served, watched) as term:
            await term.wait_message("setup")
            await culled(manager, quiet, also=(watched,))
            assert [pid for pid in pids if pid_alive(pid)] == []
            # Inactive as well, but a browser is attached: kept (terminals.cull_connected is off).
            assert watched in manager.terminals
            await term.type("echo still-$((1+1))\r")
            await term.wait_output(r"still-2\r\n")
        await culled(manager, watched)


async def test_culling_connected_terminals_when_asked(root: Path, new_terminal: Any) -> None:
    async with serving(root, **CULLING, **{"terminals.cull_connected": True}) as served:
        name = (await new_terminal(served))["name"]
        async with TermClient.open(served, name) as term:
            await term.wait_message("setup")
            await culled(manager_of(served), name)
            assert await term.wait_message("disconnect") == ["disconnect", 1]
        assert name not in manager_of(served).terminals


async def test_server_shutdown_leaves_no_process(root: Path, new_terminal: Any) -> None:
    async with serving(root) as served:
        first = (await new_terminal(served))["name"]
        second = (await new_terminal(served))["name"]
        pids = await start_jobs(served, first) + await start_jobs(served, second)
        manager = manager_of(served)
    # uvicorn has stopped: the lifespan shutdown ended both sessions before it returned.
    left = [pid for pid in pids if pid_alive(pid)]
    assert left == [], f"of {pids}, still running:\n{describe_processes(left)}"
    assert manager.terminals == {}
