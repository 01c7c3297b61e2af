"""The document and its file: out-of-band changes merged cell by cell, no-op writes, conflicts,
renames and moves keeping the file id."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Text

from tests.collab.clients import eventually, joined, notebook, put_session
from tests.conftest import TOKEN
from tests.serving import Served


@pytest.fixture
def collab_extensions() -> list[str]:
    return ["collab", "watch"]


def write_notebook(path: Path, nb: dict[str, Any]) -> None:
    """An editor's atomic save: a temporary file renamed over the notebook."""
    tmp = path.with_name(".~" + path.name)
    tmp.write_text(json.dumps(nb))
    os.replace(tmp, path)


def with_output(nb: dict[str, Any]) -> dict[str, Any]:
    nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "kept output\n"}]
    nb["cells"][0]["execution_count"] = 1
    return nb


async def test_disk_edit_reaches_both_clients_cell_by_cell(collab: Served, root: Path) -> None:
    write_notebook(root / "demo.ipynb", with_output(notebook("a = 1", "print(a)")))
    async with joined(collab.ws_url, collab.url, "demo.ipynb") as one, \
            joined(collab.ws_url, collab.url, "demo.ipynb") as two:
        first: Text = one.doc.ycells[0]["source"]
        write_notebook(root / "demo.ipynb", with_output(notebook("a = 1", "print(a * 2)")))
        for client in (one, two):
            await eventually(lambda c=client: str(c.doc.ycells[1]["source"]) == "print(a * 2)", "the disk edit")
        # The untouched first cell kept its output and is the same Yjs item: typing into the
        # Text the client held before still reaches the other client.
        assert one.doc.get()["cells"][0]["outputs"] == [{"output_type": "stream", "name": "stdout",
                                                         "text": "kept output\n"}]
        first += "  # still live"
        await eventually(lambda: str(two.doc.ycells[0]["source"]) == "a = 1  # still live", "the edit in cell 0")


async def test_same_bytes_change_nothing_and_a_conflict_is_reported(collab: Served, root: Path) -> None:
    async with joined(collab.ws_url, collab.url, "demo.ipynb") as client:
        service = collab.app.server.services["collab"]
        document = next(r.document for r in service.rooms.values() if r.document is not None)
        disk_hash = document.disk_hash
        before = (root / "demo.ipynb").read_bytes()
        write_notebook(root / "demo.ipynb", json.loads(before))  # the same bytes, a new inode and mtime
        os.utime(root / "demo.ipynb")
        # A real change afterwards is merged: by then the no-op write was handled too.
        write_notebook(root / "demo.ipynb", notebook("a = 1", "b = 2"))
        await eventually(lambda: str(client.doc.ycells[1]["source"]) == "b = 2", "the disk edit")
        assert document.disk_hash != disk_hash
        assert client.channel.raw == []  # no conflict for a document without unsaved edits


@pytest.mark.parametrize("collab_settings", [{"collab.save_delay": None}])  # keep edits unsaved
async def test_conflict_with_unsaved_edits_is_reported_never_silent(collab: Served, root: Path) -> None:
    async with joined(collab.ws_url, collab.url, "demo.ipynb") as client:
        source: Text = client.doc.ycells[0]["source"]
        source += " + 1"
        await eventually(lambda: client.doc.ystate.get("dirty") is True, "the edit to reach the server")
        write_notebook(root / "demo.ipynb", notebook("changed on disk", "print(a)"))
        await eventually(lambda: {"type": "conflict"} in client.channel.raw, "a RAW conflict message")
        # Neither side lost anything: the disk keeps its version, the document its edit.
        assert json.loads((root / "demo.ipynb").read_text())["cells"][0]["source"] == "changed on disk"
        assert str(client.doc.ycells[0]["source"]) == "a = 1 + 1"
        # Ctrl+S after the conflict dialog: the user chose to overwrite.
        assert (await client.save())["status"] == "success"
        assert "".join(json.loads((root / "demo.ipynb").read_text())["cells"][0]["source"]) == "a = 1 + 1"


async def test_rename_through_the_api_keeps_the_id_and_the_room(collab: Served, root: Path) -> None:
    async with joined(collab.ws_url, collab.url, "demo.ipynb") as client:
        file_id = client.session["fileId"]
        with httpx.Client(base_url=collab.url, headers={"Authorization": f"token {TOKEN}"}) as http:
            assert http.patch("/api/contents/demo.ipynb", json={"path": "renamed.ipynb"}).status_code == 200
            await eventually(lambda: client.doc.ystate.get("path") == "renamed.ipynb", "state.path to follow")
            assert http.get("/api/fileid/path", params={"id": file_id}).json()["path"] == "renamed.ipynb"
        source: Text = client.doc.ycells[0]["source"]
        source += "  # after rename"
        await eventually(lambda: "after rename" in (root / "renamed.ipynb").read_text(), "the save at the new path")
    again = (await put_session(collab.url, "renamed.ipynb")).json()
    assert again["fileId"] == file_id


async def test_moves_outside_carme_keep_the_id(collab: Served, root: Path) -> None:
    file_id = (await put_session(collab.url, "demo.ipynb")).json()["fileId"]
    (root / "sub").mkdir()
    shutil.move(root / "demo.ipynb", root / "sub" / "moved.ipynb")  # a shell mv: same inode, new path
    with httpx.Client(base_url=collab.url, headers={"Authorization": f"token {TOKEN}"}) as http:
        def moved() -> bool:
            return http.get("/api/fileid/path", params={"id": file_id}).json().get("path") == "sub/moved.ipynb"

        await eventually(moved, "the id to follow the move")
    assert (await put_session(collab.url, "sub/moved.ipynb")).json()["fileId"] == file_id


async def test_a_cold_load_gives_code_cells_the_trust_the_contents_api_gives(collab: Served, root: Path) -> None:
    """The trust check runs beside the build and its flags are set on the built document: a
    joiner's cells carry what a GET of the notebook carries, signed or not, with cell ids or not
    (an nbformat 4.4 notebook's cells are built by jupyter_ydoc, found by walking the cells)."""
    nb = with_output(notebook("a = 1", "print(a)"))
    nb["cells"].insert(1, {"cell_type": "markdown", "id": "md", "metadata": {}, "source": "# t"})
    old = json.loads(json.dumps(nb))
    old["nbformat_minor"] = 4
    for cell in old["cells"]:
        del cell["id"]
    unsigned = json.loads(json.dumps(nb))
    unsigned["metadata"]["other"] = 1  # not the signed content
    for name, content in (("signed.ipynb", nb), ("unsigned.ipynb", unsigned), ("old-signed.ipynb", old)):
        (root / name).write_text(json.dumps(content))
    async with httpx.AsyncClient(base_url=collab.url, headers={"Authorization": f"token {TOKEN}"}) as http:
        for name in ("signed.ipynb", "old-signed.ipynb"):
            assert (await http.post(f"/api/contents/{name}/trust")).status_code == 201
        for name, expected in (("signed.ipynb", [True, None, True]), ("unsigned.ipynb", [False, None, False]),
                               ("old-signed.ipynb", [True, None, True])):
            rest = (await http.get(f"/api/contents/{name}")).json()["content"]["cells"]
            assert [cell["metadata"].get("trusted") for cell in rest] == expected
            async with joined(collab.ws_url, collab.url, name) as client:
                cells = client.doc.get()["cells"]
                assert [cell["metadata"].get("trusted") for cell in cells] == expected, name
                assert [cell["source"] for cell in cells] == ["a = 1", "# t", "print(a)"]


async def test_a_big_notebooks_cold_load_reaches_every_joiner_whole(collab: Served, root: Path) -> None:
    """Over 1 MiB the load's encoding and its SyncStep2 frame (made beside the apply) are what the
    joiners get: both hold the whole notebook, trust flags and server state included."""
    nb = with_output(notebook("a = 1", "print(a)"))
    big = "".join(f"line {i}\n" for i in range(200_000))
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": big}]
    (root / "big.ipynb").write_text(json.dumps(nb))
    session = (await put_session(collab.url, "big.ipynb")).json()
    async with joined(collab.ws_url, collab.url, "big.ipynb", session=session) as one, \
            joined(collab.ws_url, collab.url, "big.ipynb", session=session) as two:
        for client in (one, two):
            cells = client.doc.get()["cells"]
            assert cells[1]["outputs"][0]["text"] == big
            assert [cell["metadata"]["trusted"] for cell in cells] == [False, False]
            await eventually(lambda c=client: c.doc.ystate.get("path") == "big.ipynb", "the room's state")
