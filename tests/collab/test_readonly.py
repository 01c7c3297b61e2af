"""Read-only collaborators: they see live edits; their own edits reach neither the others nor the disk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carme import create_app
from carme.auth import User
from carme.hooks import hookimpl
from tests.collab.clients import eventually, joined, notebook, put_session
from tests.conftest import TOKEN
from tests.serving import Served, serve


class Users:
    """Identifies websocket clients by an X-Test-User header; readers may not write."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    @hookimpl
    def carme_user_from_connection(self, server: Any, connection: Any) -> User | None:
        name = connection.headers.get("x-test-user")
        return User(name) if name else None

    @hookimpl
    def carme_collab_can_write(self, server: Any, user: User | None, path: str) -> bool | None:
        if user is None:
            return None
        self.asked.append((user.username, path))
        return False if user.username.startswith("reader") else None


@pytest.fixture
def users() -> Users:
    return Users()


@pytest.fixture
def served_users(root: Path, users: Users) -> Iterator[Served]:
    (root / "demo.ipynb").write_text(json.dumps(notebook("x = 1")))
    app = create_app(str(root), token=TOKEN, extensions=["collab"], plugins=[users],
                     settings={"collab.save_delay": 0.1, "collab.read_only_users": ["bob"]})
    with serve(app) as running:
        yield running


def room_of(served: Served) -> Any:
    rooms = served.app.server.services["collab"].rooms
    return next(r.room for r in rooms.values() if r.document is not None)


def cells_on_disk(root: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads((root / "demo.ipynb").read_text())["cells"]]


@pytest.mark.parametrize("reader", ["reader-1", "bob"])  # by the hook, by the setting
async def test_hook_carme_collab_can_write(served_users: Served, root: Path, users: Users, reader: str) -> None:
    session = (await put_session(served_users.url, "demo.ipynb")).json()
    url, ws = served_users.url, served_users.ws_url
    async with joined(ws, url, "demo.ipynb", session=session, headers={"X-Test-User": "writer"}) as writer, \
            joined(ws, url, "demo.ipynb", session=session, headers={"X-Test-User": reader}) as ro:
        assert (reader, "demo.ipynb") in users.asked
        ro.doc.append_cell({"cell_type": "code", "source": "from the reader", "metadata": {}, "outputs": [],
                            "execution_count": None, "id": "ro"})
        room = room_of(served_users)
        await eventually(lambda: room.dropped_updates >= 1, "the reader's update to be dropped")
        writer.doc.append_cell({"cell_type": "code", "source": "from the writer", "metadata": {}, "outputs": [],
                                "execution_count": None, "id": "rw"})
        # The reader sees the writer's edit live; the writer and the disk never see the reader's.
        await eventually(lambda: any(c["id"] == "rw" for c in ro.doc.get()["cells"]), "the reader to see the edit")
        await eventually(lambda: cells_on_disk(root) == ["x = 1", "from the writer"], "the writer's edit on disk")
        assert [c["id"] for c in writer.doc.get()["cells"]] == ["cell-0", "rw"]
        assert (await ro.save())["status"] == "skipped"
    assert cells_on_disk(root) == ["x = 1", "from the writer"]
