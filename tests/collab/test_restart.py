"""Restarts: the server killed with SIGKILL and started again; clients come back with the same
document and nothing is duplicated; a lost history makes them reload instead of merging."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jupyter_ydoc import YNotebook

from tests.collab.clients import Client, eventually, notebook, put_session
from tests.conftest import TOKEN
from tests.processes import Process


class Carme(Process):
    """``carme serve`` with only collab, in its own process (so that it can be SIGKILLed)."""

    def __init__(self, root: Path, cwd: Path) -> None:
        super().__init__([sys.executable, "-m", "carme.cli", "serve", str(root), "--no-browser", "--port", "0",
                          "--token", TOKEN, "--disable", "lab", "--disable", "watch", "--disable", "widgets",
                          "--disable", "dashboards", "--set", "collab.save_delay=0.2"], cwd)
        url = urlsplit(self.url())
        self.http = f"{url.scheme}://{url.netloc}"
        self.ws = "ws" + self.http[len("http"):]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Carme]]:
    started: list[Carme] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[Carme], root: Path, tmp_path: Path) -> Carme:
    server = Carme(root, tmp_path)
    servers.append(server)
    return server


def cell(source: str, cell_id: str) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "metadata": {}, "outputs": [], "execution_count": None,
            "id": cell_id}


def ids(doc: YNotebook) -> list[str]:
    """The cell ids of the shared document itself (YNotebook.get() would hide duplicates)."""
    return [str(c["id"]) for c in doc.ycells]


async def test_sigkill_restart_clients_reconnect_without_duplicates(servers: list[Carme], root: Path,
                                                                    tmp_path: Path) -> None:
    (root / "demo.ipynb").write_text(json.dumps(notebook("a = 1")))
    server = start(servers, root, tmp_path)
    session = (await put_session(server.http, "demo.ipynb")).json()
    one, two = Client(YNotebook()), Client(YNotebook())
    await one.connect(server.ws, session)
    await two.connect(server.ws, session)
    one.doc.append_cell(cell("from one", "one"))
    two.doc.append_cell(cell("from two", "two"))
    await eventually(lambda: sorted(ids(one.doc)) == sorted(ids(two.doc)) == ["cell-0", "one", "two"],
                     "both clients to converge")
    server.proc.kill()  # SIGKILL: no shutdown, no last save
    server.wait()
    await one.disconnect()
    await two.disconnect()
    one.doc.append_cell(cell("offline edit", "offline"))  # made while the server was down

    server = start(servers, root, tmp_path)
    assert await one.connect(server.ws, session) is None  # the old sessionId: the history survived
    assert await two.connect(server.ws, session) is None
    await eventually(lambda: ids(one.doc) == ids(two.doc) and len(ids(two.doc)) == 4, "both clients to converge")
    assert sorted(ids(one.doc)) == ["cell-0", "offline", "one", "two"]  # nothing duplicated
    assert (await put_session(server.http, "demo.ipynb")).json()["sessionId"] == session["sessionId"]

    def on_disk() -> list[str]:
        return [c["id"] for c in json.loads((root / "demo.ipynb").read_text())["cells"]]

    await eventually(lambda: sorted(on_disk()) == ["cell-0", "offline", "one", "two"], "the notebook saved")
    await one.disconnect()
    await two.disconnect()


async def test_lost_history_makes_clients_reload(servers: list[Carme], root: Path, tmp_path: Path,
                                                 jupyter_env: Path) -> None:
    (root / "demo.ipynb").write_text(json.dumps(notebook("a = 1")))
    server = start(servers, root, tmp_path)
    session = (await put_session(server.http, "demo.ipynb")).json()
    client = Client(YNotebook())
    await client.connect(server.ws, session)
    client.doc.append_cell(cell("x", "x"))
    await eventually(lambda: len(json.loads((root / "demo.ipynb").read_text())["cells"]) == 2, "the autosave")
    server.proc.kill()
    server.wait()
    await client.disconnect()
    for store in (jupyter_env / "data").glob("carme_collab_store.db*"):
        store.unlink()  # the history is gone (a wiped data dir, a new machine)

    server = start(servers, root, tmp_path)
    fresh = (await put_session(server.http, "demo.ipynb")).json()
    assert fresh["fileId"] == session["fileId"]  # file ids are stored apart
    assert fresh["sessionId"] != session["sessionId"]
    stale = Client(YNotebook())
    stale.doc.ydoc.apply_update(client.doc.ydoc.get_update())
    code, reason = await stale.connect(server.ws, session) or (0, "")
    assert code == 1003 and json.loads(reason)["reason"] == "unknown_session"
    await stale.disconnect()
    reloaded = Client(YNotebook())  # the page reloaded: a new document, the new session
    assert await reloaded.connect(server.ws, fresh) is None
    assert ids(reloaded.doc) == ["cell-0", "x"]
    await reloaded.disconnect()
