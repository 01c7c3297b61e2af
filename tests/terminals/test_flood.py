"""A terminal flooding output never starves the server: with a browser that does not read, the
terminal stops reading its pty (the program waits) and the server holds a bounded amount; with a
browser that reads, the flood flows while REST requests and a kernel round trip are answered."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from carme_terminals.terminal import READ_SIZE
from tests.kernels.wsclient import Client
from tests.polling import await_until
from tests.serving import AUTH, Served
from tests.terminals.conftest import TermClient, manager_of, serving

BUFFER = 64 * 1024  # terminals.client_buffer_chars of these tests


@contextlib.asynccontextmanager
async def kernel(served: Served) -> AsyncIterator[Client]:
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=60) as api:
        started = await api.post("/api/kernels", json={"name": "python3"})
        assert started.status_code == 201, started.text
        client = await Client.open(served.ws_url, started.json()["id"])
        try:
            yield client
        finally:
            await client.close()


async def others_are_served(served: Served, client: Client) -> None:
    """A REST request, a terminal listing and a kernel round trip, all answered."""
    (Path(manager_of(served).root) / "note.txt").write_text("hello")
    async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=60) as api:
        contents, terminals = await asyncio.gather(api.get("/api/contents/note.txt"), api.get("/api/terminals"))
    assert contents.status_code == 200 and contents.json()["content"] == "hello"
    assert terminals.status_code == 200
    assert (await client.run("print(6*7)")).strip() == "42"


async def test_a_browser_that_does_not_read_makes_the_terminal_wait(root: Path, new_terminal: Any) -> None:
    async with serving(root, **{"terminals.client_buffer_chars": BUFFER}) as served, kernel(served) as client:
        name = (await new_terminal(served))["name"]
        terminal = manager_of(served).get(name)
        # max_queue=1: the client stops reading its socket after one message; it never reads here.
        # No compression: `yes` compresses a thousandfold, and the socket buffers would take minutes to fill.
        async with TermClient.open(served, name, max_queue=1, compression=None) as slow:
            await slow.type("yes flood\r")
            await await_until(lambda: terminal.paused, "the terminal to stop reading its pty")
            read = terminal.bytes_read
            (attachment,) = terminal.clients
            await others_are_served(served, client)
            # Still waiting: nothing more was read, and what waits for the browser is bounded.
            assert terminal.paused and terminal.bytes_read == read
            assert attachment.pending < BUFFER + READ_SIZE
            # The browser reads again: the terminal goes on.
            async def drain() -> None:
                while True:
                    await slow.recv()
                    slow.output = slow.output[-100:]
            reader = asyncio.ensure_future(drain())
            try:
                await await_until(lambda: terminal.bytes_read > read + 10 * BUFFER, "the flood to go on")
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader


async def test_a_flood_read_by_a_browser_leaves_the_server_responsive(root: Path, new_terminal: Any) -> None:
    async with serving(root) as served, kernel(served) as client:
        name = (await new_terminal(served))["name"]
        other = (await new_terminal(served))["name"]
        terminal = manager_of(served).get(name)
        async with TermClient.open(served, name) as fast, TermClient.open(served, other) as calm:
            received = 0

            async def drain() -> None:
                nonlocal received
                while True:
                    message = await fast.recv()
                    received += len(message[1]) if message[0] == "stdout" else 0
                    fast.output = fast.output[-200:]

            reader = asyncio.ensure_future(drain())
            try:
                await fast.type("yes flood\r")
                await await_until(lambda: received > 1_000_000, "the flood to arrive")
                start = terminal.bytes_read
                await others_are_served(served, client)
                # Another terminal on the same server answers too.
                await calm.type("echo calm-$((6*7))\r")
                await calm.wait_output(r"calm-42\r\n")
                assert terminal.bytes_read > start  # the flood went on meanwhile
                await fast.type("\x03")  # Ctrl-C stops yes: the pty's signals work
                await fast.type("echo stopped-$((1+1))\r")
                await await_until(lambda: "stopped-2" in fast.output or None, "the shell to answer after Ctrl-C",
                                  check=lambda seen: seen is not None)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader


async def test_several_browsers_each_get_the_whole_flood_once_and_in_order(root: Path, new_terminal: Any) -> None:
    # Output is batched into messages per browser and the pty waits for the slowest one: neither
    # may lose, repeat or reorder anything, for a browser that reads at once or one that lags.
    async with serving(root, **{"terminals.client_buffer_chars": BUFFER}) as served:
        name = (await new_terminal(served))["name"]
        async with TermClient.open(served, name) as quick, \
                TermClient.open(served, name, max_queue=1, compression=None) as lagging:
            for term in (quick, lagging):
                await term.wait_message("setup")
            await quick.type("seq 1 100000; echo seq-$((1+1))\r")
            await asyncio.gather(quick.wait_output(r"seq-2\r\n"), lagging.wait_output(r"seq-2\r\n"))
            for term in (quick, lagging):
                # (bash may put an escape sequence, ending bracketed paste, before the first line)
                lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", term.output).split("\n")
                numbers = [line.strip("\r") for line in lines if line.strip("\r").isdigit()]
                assert numbers == [str(i) for i in range(1, 100_001)]
