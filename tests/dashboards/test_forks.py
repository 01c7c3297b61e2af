"""Dashboard kernels forked from a warm fork server: each visit still gets its own fresh
process (its folder, its request, its own random state), interrupts and restarts work, a
kernelspec that is not ipykernel's launcher is spawned as before, nothing is left running
when the server stops or the fork server dies, and every forked pid is reaped exactly once,
after carme is done with it; a limit on fork servers below one is refused."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from carme import create_app
from carme.config import ConfigError
from carme_dashboards.forks import ForkServer, ForkServers
from tests.dashboards.site import CONFIG, cells, dashboards, held_kernelspec, http, kernel_ids, page, write_notebook
from tests.polling import await_until, wait_until
from tests.serving import Served

REPORT = ("import os, sys, random, helper\n"
          "print('report', os.getpid(), os.getppid(), os.environ['JPY_PARENT_PID'], os.getcwd(), "
          "os.environ['QUERY_STRING'], random.random(), helper.NAME)")


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    """Running, or a zombie nobody reaped (both are left-overs)."""
    return os.path.exists(f"/proc/{pid}")


def fork_server(served: Served) -> ForkServer:
    servers = served.app.server.services["dashboards"].forks.servers
    assert len(servers) == 1
    return servers[0]


def kernel_id_of(html: str) -> str:
    match = CONFIG.search(html)
    assert match is not None
    return str(json.loads(match.group(1))["kernelId"])


def report(html: str) -> list[str]:
    match = re.search(r"report (.*)\n", cells(html)[0])
    assert match, cells(html)
    return match.group(1).split()


def test_each_visit_gets_its_own_forked_kernel(root: Path) -> None:
    folder = root / "apps"
    write_notebook(folder / "nb.ipynb", REPORT)
    (folder / "helper.py").write_text("NAME = 'helper-next-to-the-notebook'\n")
    with dashboards(root) as served, http(served) as one, http(served) as two:
        first = report(one.get("dashboards/render/apps/nb.ipynb?who=one").text)
        second = report(two.get("dashboards/render/apps/nb.ipynb?who=two").text)
        server = fork_server(served)
        assert server.ready.result() is True and server.process is not None
        for values, who in ((first, "one"), (second, "two")):
            pid, ppid, parent_env, cwd, query, _random, helper = values
            assert int(ppid) == server.process.pid == int(parent_env)  # forked, and dies with its server
            assert cwd == str(folder) and query == f"who={who}" and helper == "helper-next-to-the-notebook"
        assert first[0] != second[0]  # two processes
        assert first[5] != second[5]  # random state is not inherited from the server
        assert {int(first[0]), int(second[0])} == {served.app.server.kernels.get(k).pid for k in kernel_ids(served)}


def python_kernelspec(data_dir: Path, name: str, env: dict[str, str]) -> None:
    folder = data_dir / "kernels" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": name, "language": "python", "env": env}))


def test_forked_kernels_share_their_servers_hash_seed_and_a_set_seed_is_kept(root: Path, jupyter_env: Path) -> None:
    """The one thing a fork cannot renew (the README says so): kernels of one server hash
    strings alike. A kernel whose environment sets PYTHONHASHSEED gets exactly that seed,
    forked from a server of its own, as a spawned kernel would."""
    python_kernelspec(jupyter_env / "data", "seeded", {"PYTHONHASHSEED": "1234"})
    shown = "import os; print('report', hash('carme'), os.getppid())"
    write_notebook(root / "nb.ipynb", shown)
    write_notebook(root / "seeded.ipynb", shown, kernel="seeded")
    expected = subprocess.run([sys.executable, "-c", "print(hash('carme'))"], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": "1234"}).stdout.split()[0]
    with dashboards(root) as served, http(served) as one, http(served) as two, http(served) as three:
        first = report(one.get("dashboards/render/nb.ipynb").text)
        second = report(two.get("dashboards/render/nb.ipynb").text)
        seeded = report(three.get("dashboards/render/seeded.ipynb").text)
        servers = {server.process.pid: server for server in served.app.server.services["dashboards"].forks.servers
                   if server.process is not None}
        assert first[0] == second[0] and first[1] == second[1]  # one server, one seed
        assert seeded[0] == expected != first[0]
        assert int(seeded[1]) in servers and seeded[1] != first[1]  # forked, from its own server
        assert servers[int(seeded[1])].env["PYTHONHASHSEED"] == "1234"


def test_a_forked_kernel_is_interrupted_and_restarted(root: Path) -> None:
    write_notebook(root / "slow.ipynb", "import time; time.sleep(3600)")
    write_notebook(root / "nb.ipynb", "print('hi')")
    with dashboards(root, cell_timeout=0.5) as served, http(served) as client:
        html = client.get("dashboards/render/slow.ipynb").text
        assert 'data-status="timeout"' in html  # the interrupt (SIGINT to its process group) arrived
        html = client.get("dashboards/render/nb.ipynb").text
        kernel = served.app.server.kernels.get(kernel_id_of(html))
        old = kernel.pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: kernel.pid != old and kernel.execution_state == "idle", what="the restarted kernel")
        assert parent_of(kernel.pid) == fork_server(served).process.pid
        wait_until(lambda: not alive(old), what="the killed kernel to be reaped")


def test_a_kernel_not_started_by_ipykernel_launcher_is_spawned(root: Path, tmp_path: Path,
                                                               jupyter_env: Path) -> None:
    gate = tmp_path / "open"
    gate.touch()
    held_kernelspec(jupyter_env / "data", "held-fork", gate)
    write_notebook(root / "nb.ipynb", "import os; print('parent', os.getppid())", kernel="held-fork")
    with dashboards(root) as served, http(served) as client:
        html = client.get("dashboards/render/nb.ipynb").text
        assert f"parent {os.getpid()}" in cells(html)[0]
        assert served.app.server.services["dashboards"].forks.servers == []


def test_nothing_is_left_running_after_the_server_stops(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('hi')")
    with dashboards(root, app_mode=True, notebook="nb.ipynb") as served, http(served) as client:
        server = fork_server(served)  # app mode: started with the server, before any visit
        assert "hi" in cells(client.get("/").text)[0]
        pids = [served.app.server.kernels.get(k).pid for k in kernel_ids(served)]
        assert server.process is not None
        pids.append(server.process.pid)
    wait_until(lambda: not any(alive(pid) for pid in pids), what=f"no process of {pids} left")


def test_a_dead_fork_server_takes_its_kernels_along_and_visits_go_on(root: Path) -> None:
    write_notebook(root / "nb.ipynb", "print('hi')")
    with dashboards(root) as served, http(served) as one, http(served) as two:
        with page(one, "dashboards/render/nb.ipynb") as first:
            first.finish()
        kernel_pid = served.app.server.kernels.get(next(iter(kernel_ids(served)))).pid
        server = fork_server(served)
        assert server.process is not None
        server.process.kill()
        wait_until(lambda: not alive(kernel_pid), what="the kernel to end with its fork server")
        wait_until(lambda: server.closed, what="carme to see the fork server gone")
        assert "hi" in cells(two.get("dashboards/render/nb.ipynb").text)[0]


@pytest.mark.parametrize(("limit", "fork_kernels"), [(0, True), (-3, True), (0, False)])
def test_a_fork_server_limit_below_one_is_refused_naming_the_setting(root: Path, limit: int,
                                                                      fork_kernels: bool) -> None:
    # Refused even with fork servers off: the configuration is wrong whether or not it is used now.
    with pytest.raises(ConfigError, match=rf"^create_app: dashboards.max_fork_servers = {limit} is not valid: "
                                          r"expected an integer >= 1$"):
        create_app(str(root), extensions=["dashboards"], config_files=False,
                   settings={"dashboards.max_fork_servers": limit, "dashboards.fork_kernels": fork_kernels})


async def started_server(folder: Path) -> tuple[ForkServers, ForkServer, dict[str, str]]:
    """A fork server of this Python's ipykernel, warmed up, outside any carme app."""
    env = {**os.environ, "JPY_PARENT_PID": str(os.getpid())}
    servers = ForkServers(folder)
    found = servers.server_for([sys.executable, "-m", "ipykernel_launcher"], env)
    assert found is not None
    assert await found[0].ready is True, found[0].reason
    return servers, found[0], env


def lines_waiting(sock: socket.socket) -> int:
    try:
        return sock.recv(65536, socket.MSG_PEEK).count(b"\n")
    except BlockingIOError:
        return 0


async def test_a_kernel_that_exits_at_once_is_seen_to_exit(tmp_path: Path) -> None:
    """Its exit may be read right after its pid, before the start resumes: it still counts."""
    servers, server, env = await started_server(tmp_path)
    assert server._writer is not None
    peek = socket.socket(fileno=os.dup(server._writer.transport.get_extra_info("socket").fileno()))
    try:
        start = asyncio.ensure_future(server.fork("ipykernel_launcher", ["--version"], True, tmp_path, env))
        await asyncio.sleep(0)  # the fork request is sent
        # The loop held on purpose until the pid and the exit are both waiting: one read takes both.
        wait_until(lambda: lines_waiting(peek) >= 2, what="the kernel's pid and exit sent")
        kernel = await start
        await await_until(kernel.poll, "the kernel's exit seen by carme", check=lambda code: code == 0)
        server.release(kernel)
        await await_until(lambda: not alive(kernel.pid), "the exited kernel reaped")
    finally:
        peek.close()
        await servers.close()


async def test_a_kernel_released_before_its_exit_is_reaped_when_it_exits(tmp_path: Path) -> None:
    """carme's wait for a killed kernel can run out; the pid is reaped once it does exit. The
    kernel's process group is its own from the start (a signal to it reaches no other)."""
    servers, server, env = await started_server(tmp_path)
    try:
        for _ in range(10):  # a group of its own as soon as its start returns: carme signals that group
            once = await server.fork("ipykernel_launcher", ["--version"], True, tmp_path, env)
            assert os.getpgid(once.pid) == once.pid
            server.release(once)
        kernel = await server.fork("ipykernel_launcher", ["-f", str(tmp_path / "kernel.json")], True, tmp_path, env)
        assert os.getpgid(kernel.pid) == kernel.pid
        server.release(kernel)
        server.release(kernel)  # once is enough: a second reap could take a reused pid
        assert kernel.poll() is None and alive(kernel.pid)
        os.killpg(kernel.pid, signal.SIGKILL)
        await await_until(lambda: not alive(kernel.pid), "the killed kernel reaped")
        assert kernel.poll() == -signal.SIGKILL
    finally:
        await servers.close()


async def test_fork_servers_past_the_limit_are_retired_least_recently_used_idle_first(tmp_path: Path) -> None:
    """One server per start-up environment (a hook setting LANG per visitor makes many): past
    the limit the least recently used one without kernels stops; one with a kernel is kept,
    and its kernel runs on."""
    base = {**os.environ, "JPY_PARENT_PID": str(os.getpid())}
    servers = ForkServers(tmp_path, limit=2)
    argv = [sys.executable, "-m", "ipykernel_launcher"]

    async def server_of(lang: str) -> ForkServer:
        found = servers.server_for(argv, {**base, "LANG": lang})
        assert found is not None
        assert await found[0].ready is True, found[0].reason
        return found[0]

    def process_of(server: ForkServer) -> subprocess.Popen[bytes]:
        assert server.process is not None
        return server.process

    try:
        busy = await server_of("C.UTF-8")
        kernel = await busy.fork("ipykernel_launcher", ["-f", str(tmp_path / "kernel.json")], True, tmp_path,
                                 {**base, "LANG": "C.UTF-8"})
        idle = await server_of("en_US.UTF-8")
        third = await server_of("de_DE.UTF-8")
        # Three past a limit of two: the least recently used has a kernel, so the next one goes.
        assert servers.servers == [busy, third]
        await await_until(lambda: process_of(idle).poll() is not None, "the retired fork server to exit")
        assert kernel.poll() is None and alive(kernel.pid) and parent_of(kernel.pid) == process_of(busy).pid
        # Used again, a server is the most recent: a new one retires the other, idle one.
        assert await server_of("C.UTF-8") is busy
        fourth = await server_of("fr_FR.UTF-8")
        assert servers.servers == [busy, fourth] and third.closed
        # Once its kernel is gone, the busy one is idle and, least recently used, goes next.
        os.killpg(kernel.pid, signal.SIGKILL)
        await await_until(kernel.poll, "the kernel's exit seen", check=lambda code: code is not None)
        busy.release(kernel)
        await server_of("it_IT.UTF-8")
        assert busy not in servers.servers and len(servers.servers) == 2
        await await_until(lambda: process_of(busy).poll() is not None, "the once busy fork server to exit")
    finally:
        await servers.close()
