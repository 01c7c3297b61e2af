"""Changes made through carme's contents API are reported with source "api"; others "external"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from carme_watch.origin import ApiWrites
from tests.polling import wait_until
from tests.serving import Served
from tests.watch.conftest import Clock, Recorder, Subscriber, watcher_of


@pytest.fixture
def api(watched: Served, root: Path) -> Iterator[httpx.Client]:
    """A client of the watched server whose records of API writes never expire during the test:
    how soon the watcher sees a change (the machine's speed) cannot turn "api" into "external".
    Expiry itself is tested with a clock of its own in test_changes.py."""
    watcher = watcher_of(watched)
    watcher.api_writes = ApiWrites(root, watcher.api_writes.window_s, clock=Clock())
    with watched.client(timeout=60) as c:
        yield c


def put_text(api: httpx.Client, path: str, text: str) -> None:
    response = api.put(f"/api/contents/{path}", json={"type": "file", "format": "text", "content": text})
    assert response.status_code in (200, 201), response.text


def test_api_save_rename_delete_are_tagged(root: Path, api: httpx.Client, events: Subscriber,
                                           recorder: Recorder) -> None:
    put_text(api, "notes.txt", "one")
    events.wait_change("notes.txt", "added", source="api")
    put_text(api, "notes.txt", "two")  # an atomic save over the existing file
    events.wait_change("notes.txt", "modified", source="api")

    response = api.patch("/api/contents/notes.txt", json={"path": "renamed.txt"})
    assert response.status_code == 200, response.text
    moved = events.wait_change("renamed.txt", "moved", source="api")
    assert moved["old_path"] == "notes.txt"

    assert api.delete("/api/contents/renamed.txt").status_code == 204
    events.wait_change("renamed.txt", "deleted", source="api")

    # The temporary files of atomic saves are never reported.
    assert all(not e["path"].startswith(".") for e in events.events)
    wait_until(lambda: any(c.change == "moved" and c.source == "api" for c in recorder.changes()),
               "the hook to see the move")


def test_external_edit_right_after_an_api_save_is_external(root: Path, api: httpx.Client,
                                                           events: Subscriber) -> None:
    put_text(api, "shared.txt", "from the API")
    events.wait_change("shared.txt", "added", source="api")
    (root / "shared.txt").write_text("from an editor, longer than before")
    events.wait_change("shared.txt", "modified", source="external")


def test_api_folder_and_disk_file_side_by_side(root: Path, api: httpx.Client, events: Subscriber) -> None:
    response = api.put("/api/contents/made-by-api", json={"type": "directory"})
    assert response.status_code == 201, response.text
    (root / "made-on-disk.txt").write_text("x")
    events.wait_change("made-by-api", "added", source="api")
    events.wait_change("made-on-disk.txt", "added", source="external")
