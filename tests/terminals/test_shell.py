"""A real shell on a real pty through the REST API and terminado's websocket protocol."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from tests.serving import AUTH
from tests.terminals.conftest import TermClient, manager_of, serving


async def test_echo_gives_42(root: Path, new_terminal: Any) -> None:
    async with serving(root) as served:
        model = await new_terminal(served)
        async with TermClient.open(served, model["name"]) as term:
            assert await term.recv() == ["setup", {}]  # always first: JupyterLab drops anything before it
            await term.type("echo $((6*7))\r")
            await term.wait_output(r"[\r\n]42\r\n")


async def test_resize_changes_stty_size(root: Path, new_terminal: Any) -> None:
    async with serving(root) as served:
        model = await new_terminal(served)
        async with TermClient.open(served, model["name"]) as term:
            await term.send("set_size", 33, 101, 600, 900)
            await term.type("stty size\r")
            await term.wait_output(r"[\r\n]33 101\r\n")
            await term.send("set_size", 20, 60, 400, 500)
            await term.type("stty size\r")
            await term.wait_output(r"[\r\n]20 60\r\n")


async def test_the_pty_takes_the_smallest_browser_and_grows_when_it_leaves(root: Path, new_terminal: Any) -> None:
    async with serving(root) as served:
        model = await new_terminal(served)
        async with TermClient.open(served, model["name"]) as big:
            await big.send("set_size", 40, 120, 0, 0)
            await big.type("stty size\r")
            await big.wait_output(r"[\r\n]40 120\r\n")
            big.output = ""
            async with TermClient.open(served, model["name"]) as small:
                await small.wait_message("setup")
                await small.send("set_size", 10, 150, 0, 0)
                await small.type("stty size\r")
                await small.wait_output(r"[\r\n]10 120\r\n")
                await big.wait_output(r"[\r\n]10 120\r\n")  # both browsers see the same terminal
            await big.type("stty size\r")
            await big.wait_output(r"[\r\n]40 120\r\n")


async def test_reattach_gets_the_screen_back(root: Path, new_terminal: Any) -> None:
    async with serving(root) as served:
        model = await new_terminal(served)
        async with TermClient.open(served, model["name"]) as term:
            await term.type("echo before-$((40+2))\r")
            await term.wait_output(r"before-42\r\n")
        # The terminal outlives its websocket: output made while nobody watches is kept too.
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH) as client:
            assert (await client.get(f"/api/terminals/{model['name']}")).status_code == 200
        async with TermClient.open(served, model["name"]) as again:
            assert await again.recv() == ["setup", {}]
            replay = await again.recv()
            assert replay[0] == "stdout" and "before-42\r\n" in replay[1], replay
            await again.type("echo after-$((40+3))\r")
            await again.wait_output(r"after-43\r\n")
            assert again.output.count("before-42\r\n") == 1  # the replay, not repeated


async def test_the_replay_is_bounded_and_starts_at_a_line(root: Path, new_terminal: Any) -> None:
    async with serving(root, **{"terminals.replay_chars": 4096}) as served:
        model = await new_terminal(served)
        async with TermClient.open(served, model["name"]) as term:
            await term.type("for i in $(seq 1 3000); do echo line-$i; done; echo done-$((1+1))\r")
            await term.wait_output(r"done-2\r\n")
        async with TermClient.open(served, model["name"]) as again:
            await again.wait_message("setup")
            replay = (await again.recv())[1]
            assert len(replay) <= 4096
            assert "line-3000\r\n" in replay and "line-1\r\n" not in replay
            assert replay.startswith("line-"), replay[:40]  # whole lines: never half an escape sequence


async def test_replay_leaves_out_terminal_queries(root: Path, new_terminal: Any) -> None:
    # A program asking for the cursor position (ESC [ 6 n) or device attributes: replayed, xterm.js
    # would answer again, typing the answer into the shell (jupyterlab#17179).
    async with serving(root) as served:
        model = await new_terminal(served)
        async with TermClient.open(served, model["name"]) as term:
            await term.type(r"printf 'q1\033[6nq2\033[cq3\n'" + "\r")
            await term.wait_output("q1\x1b\\[6nq2\x1b\\[cq3")
        async with TermClient.open(served, model["name"]) as again:
            await again.wait_message("setup")
            replay = (await again.recv())[1]
            assert "q1q2q3" in replay, replay


async def test_environment_and_working_folder(root: Path, new_terminal: Any) -> None:
    (root / "sub dir").mkdir()
    async with serving(root) as served:
        model = await new_terminal(served, cwd="sub dir")
        async with TermClient.open(served, model["name"]) as term:
            await term.type('echo "E""NV T=$TERM;R=$JUPYTER_SERVER_ROOT;U=$JUPYTER_SERVER_URL;P=$(pwd)"\r')
            match = await term.wait_output(r"ENV T=(.*);R=(.*);U=(.*);P=(.*)\r\n")
        assert match.group(1) == "xterm-256color"
        assert match.group(2) == str(root.resolve())
        assert match.group(3) == served.url + "/"
        assert match.group(4) == str((root / "sub dir").resolve())
        # Without a cwd the shell starts in the root, not in the server's working folder.
        model = await new_terminal(served)
        async with TermClient.open(served, model["name"]) as term:
            await term.type('echo "P""WD=$(pwd)"\r')
            assert (await term.wait_output(r"PWD=(.*)\r\n")).group(1) == str(root.resolve())


async def test_the_login_shell_by_default(root: Path, new_terminal: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("SHELL", "/bin/sh")
    async with serving(root, **{"terminals.shell": None}) as served:
        model = await new_terminal(served)
        terminal = manager_of(served).get(model["name"])
        assert terminal.process.proc.args == ["/bin/sh", "-l"]
        async with TermClient.open(served, model["name"]) as term:
            await term.type("echo $((6*7))\r")
            await term.wait_output(r"(?<!\d)42\r\n")  # sh may print its prompt late, before it


async def test_exit_sends_disconnect_and_forgets_the_terminal(root: Path, new_terminal: Any) -> None:
    async with serving(root) as served:
        model = await new_terminal(served)
        async with TermClient.open(served, model["name"]) as term:
            await term.type("echo bye-$((2*3)); exit\r")
            assert await term.wait_message("disconnect") == ["disconnect", 1]
            assert "bye-6" in term.output  # the last output arrives before the disconnect
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH) as client:
            assert (await client.get(f"/api/terminals/{model['name']}")).status_code == 404
            assert (await client.get("/api/terminals")).json() == []


async def test_a_big_paste_arrives_whole(root: Path, new_terminal: Any) -> None:
    # More input than the pty takes at once: the rest waits for the fd, nothing is lost.
    (root / "in").mkdir()
    async with serving(root) as served:
        model = await new_terminal(served, cwd="in")
        async with TermClient.open(served, model["name"]) as term:
            await term.type("stty -echo; cat > pasted.txt\r")
            await term.wait_output("stty -echo")
            lines = "".join(f"{i:07d}\r" for i in range(40_000))
            await term.type(lines)
            await term.type("\x04")  # end of file: cat exits
            await term.type("stty echo; wc -l < pasted.txt\r")
            await term.wait_output(r"[\r\n]40000\r\n")
    content = (root / "in" / "pasted.txt").read_text()
    assert content.splitlines() == [f"{i:07d}" for i in range(40_000)]
    assert os.path.exists(root / "in" / "pasted.txt")


async def test_characters_cut_between_two_reads_arrive_whole(root: Path, new_terminal: Any) -> None:
    # 5,000 three-byte characters: the pty hands them out a few KiB a read, cutting some in two.
    async with serving(root) as served:
        model = await new_terminal(served)
        async with TermClient.open(served, model["name"]) as term:
            await term.type("printf '\u20ac%.0s' $(seq 1 5000); echo; echo utf-$((4*2))\r")
            await term.wait_output(r"utf-8\r\n")
            assert "\u20ac" * 5000 + "\r\n" in term.output and "\ufffd" not in term.output
