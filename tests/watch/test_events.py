"""File changes made directly on disk reach a websocket subscriber and the carme_watch_on_files_changed hook."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from carme.hooks import hookimpl
from carme_watch import FILE_CHANGED, Change
from tests.polling import wait_until
from tests.serving import TOKEN, Served
from tests.watch.conftest import Recorder, Subscriber, subscribe, wait_watching, watcher_of


def test_create_modify_delete_rename_reach_subscriber(root: Path, events: Subscriber) -> None:
    (root / "a.txt").write_text("one")
    created = events.wait_change("a.txt", "added")
    assert created["schema_id"] == FILE_CHANGED and created["version"] == 1 and created["timestamp"].endswith("Z")

    (root / "a.txt").write_text("two")
    events.wait_change("a.txt", "modified")

    (root / "a.txt").rename(root / "b.txt")  # outside carme: one move, not a delete and an add
    moved = events.wait_change("b.txt", "moved", source="external")
    assert moved["old_path"] == "a.txt"
    assert "a.txt" not in {e["path"] for e in events.events if e["change"] == "deleted"}

    (root / "b.txt").unlink()
    events.wait_change("b.txt", "deleted")


def test_paths_are_relative_with_slashes(root: Path, events: Subscriber) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    events.wait_change("sub/deeper", "added")
    (root / "sub" / "deeper" / "n.ipynb").write_text("{}")
    event = events.wait_change("sub/deeper/n.ipynb", "added")
    assert "old_path" not in event
    assert all(not e["path"].startswith("/") and str(root) not in e["path"] for e in events.events)


def test_hook_carme_watch_on_files_changed_gets_each_batch(root: Path, events: Subscriber, recorder: Recorder) -> None:
    (root / "x.py").write_text("print(1)")
    events.wait_change("x.py", "added")
    wait_until(lambda: Change("x.py", "added") in recorder.changes(), "the hook to see x.py")
    assert all(isinstance(c, Change) for c in recorder.changes())


def test_ignored_and_hidden_paths_produce_nothing(root: Path, events: Subscriber, recorder: Recorder) -> None:
    for folder in (".git", "node_modules/pkg", "__pycache__", ".ipynb_checkpoints", "sub/.venv/lib"):
        (root / folder).mkdir(parents=True)
        (root / folder / "f.txt").write_text("x")
    (root / "mod.pyc").write_bytes(b"\0")
    (root / ".hidden").write_text("x")
    (root / ".~tmp-save").write_text("x")
    (root / "notes.txt.swp").write_text("x")
    (root / "after.txt").write_text("the sentinel, written last")
    events.wait_change("after.txt", "added")
    wait_until(lambda: any(c.path == "after.txt" for c in recorder.changes()), "the hook to see after.txt")
    # Batches arrive in order, so everything written before the sentinel has been reported by now.
    assert events.paths() <= {"sub", "after.txt"}
    assert {c.path for c in recorder.changes()} <= {"sub", "after.txt"}


@pytest.mark.parametrize("watch_settings", [{"watch.allow_hidden": True, "watch.extra_ignore": ["*.log"]}])
def test_hidden_allowed_and_extra_ignore(root: Path, events: Subscriber) -> None:
    (root / "run.log").write_text("x")
    (root / ".env").write_text("x")
    events.wait_change(".env", "added")
    (root / "last.txt").write_text("x")
    events.wait_change("last.txt", "added")
    assert "run.log" not in events.paths()


class Gate:
    """Holds the watcher in its first batch's hook call until the test opens it."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.opened = threading.Event()

    @hookimpl
    async def carme_watch_on_files_changed(self, server: object, changes: list[Change]) -> None:
        if not self.holding.is_set():
            self.holding.set()
            await asyncio.to_thread(self.opened.wait, 60)


def test_burst_of_1000_files_is_coalesced_into_batches(root: Path, serve_app: Callable[..., Served],
                                                        recorder: Recorder) -> None:
    """1000 files written while the watcher is busy with an earlier batch: all reported once it is
    free, grouped (never a batch per file), each path at most once per batch. The gate makes the
    grouping independent of the machine's speed: every write happens before the next batch."""
    gate = Gate()
    served = serve_app(extensions=["watch"], plugins=[gate, recorder])
    wait_watching(served)
    with subscribe(served) as ws:
        events = Subscriber(ws)
        (root / "first.txt").write_text("x")
        wait_until(gate.holding.is_set, "the watcher to hand its first batch to the hooks")
        (root / "burst").mkdir()
        names = {f"burst/f{i:04}.txt" for i in range(1000)}
        for name in sorted(names):
            (root / name).write_text(name)
        gate.opened.set()
        wait_until(lambda: names <= {c.path for c in recorder.changes()}, "every burst file in the hook")
        events.wait_for(lambda e: names <= events.paths(), "every burst file on the websocket")
    batches = [batch for batch in recorder.batches if any(c.path in names for c in batch)]
    assert all(len({c.path for c in batch}) == len(batch) for batch in recorder.batches)  # coalesced
    assert len(batches) < len(names), [len(b) for b in batches]
    # At most an add and a later modify per file, even when a file's events straddle two batches.
    assert len([e for e in events.events if e["path"] in names]) <= 2 * len(names)


def test_root_deleted_and_recreated(root: Path, watched: Served) -> None:
    watcher = watcher_of(watched)
    with subscribe(watched) as ws:
        events = Subscriber(ws)
        (root / "before.txt").write_text("x")
        events.wait_change("before.txt", "added")
        shutil.rmtree(root)
        wait_until(lambda: watcher.state == "waiting", "the watcher to notice the root is gone")
        assert "does not exist" in (watcher.problem or "") or "was deleted" in (watcher.problem or "")
        root.mkdir()
        wait_watching(watched, generation=2)
        (root / "after.txt").write_text("x")
        events.wait_change("after.txt", "added")
    # The server kept serving throughout.
    response = httpx.get(watched.url + "/api/watch", headers={"Authorization": f"token {TOKEN}"})
    assert response.json()["state"] == "watching" and response.json()["generation"] == 2


def test_root_replaced_by_rename(root: Path, watched: Served, tmp_path: Path) -> None:
    """A root moved away and replaced by another folder (as some sync tools do) is watched anew."""
    (tmp_path / "fresh").mkdir()
    os.rename(root, tmp_path / "old-root")
    os.rename(tmp_path / "fresh", root)
    wait_watching(watched, generation=2)
    with subscribe(watched) as ws:
        events = Subscriber(ws)
        (root / "new.txt").write_text("x")
        events.wait_change("new.txt", "added")


@pytest.mark.parametrize("watch_settings", [{"watch.polling": True, "watch.poll_delay_ms": 50}])
def test_polling_mode(root: Path, events: Subscriber, watched: Served) -> None:
    assert watcher_of(watched).mode == "polling"
    (root / "p.txt").write_text("x")
    events.wait_change("p.txt", "added")
    (root / "p.txt").unlink()
    events.wait_change("p.txt", "deleted")


def test_hook_carme_watch_on_files_changed_failing_never_stops_the_watcher(root: Path, recorder: Recorder) -> None:
    from carme import create_app
    from carme.hooks import hookimpl
    from tests.serving import serve

    class Broken:
        @hookimpl
        async def carme_watch_on_files_changed(self, server: object, changes: list[Change]) -> None:
            raise RuntimeError("a listener bug")

    app = create_app(str(root), token=TOKEN, extensions=["watch"], plugins=[Broken(), recorder])
    with serve(app) as served:
        wait_watching(served)
        (root / "one.txt").write_text("x")
        wait_until(lambda: any(c.path == "one.txt" for c in recorder.changes()), "one.txt")
        (root / "two.txt").write_text("x")
        wait_until(lambda: any(c.path == "two.txt" for c in recorder.changes()), "two.txt")
        assert watcher_of(served).state == "watching"


def test_atomic_replace_of_an_existing_file_is_modified(root: Path) -> None:
    """Editors that save by renaming a temporary file over the target: "modified", not "added"."""
    from carme import create_app
    from tests.serving import serve

    (root / "doc.txt").write_text("v1")  # exists before watching starts: known from the initial scan
    app = create_app(str(root), token=TOKEN, extensions=["watch"])
    with serve(app) as served, subscribe(served) as ws:
        wait_watching(served)
        events = Subscriber(ws)
        (root / "new.txt").write_text("x")
        events.wait_change("new.txt", "added")
        for name in ("doc.txt", "new.txt"):
            tmp = root / f".{name}.swp-tmp"
            tmp.write_text("v2")
            os.replace(tmp, root / name)
            events.wait_change(name, "modified")
        (root / "doc.txt").unlink()
        events.wait_change("doc.txt", "deleted")
        (root / ".doc.tmp").write_text("v3")
        os.replace(root / ".doc.tmp", root / "doc.txt")
        events.wait_change("doc.txt", "added")  # deleted before: a new file again
    assert not any(e["change"] == "added" and e["path"] == "doc.txt" for e in events.events[:-1])
