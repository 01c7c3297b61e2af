"""Filtering, coalescing and api/external tagging of raw batches, on real files."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from carme import create_app
from carme.config import ConfigError
from carme_watch.changes import Change, PathFilter, coalesce, relative_path
from carme_watch.origin import ApiWrites, tag
from carme_watch.settings import DEFAULT_IGNORE, WatchConfig
from carme_watch.watcher import _watch_limit
from tests.watch.conftest import Clock

ADDED, MODIFIED, DELETED = 1, 2, 3


def test_filter_names_globs_paths_and_hidden() -> None:
    keep = PathFilter(list(DEFAULT_IGNORE) + ["build/*.log"], allow_hidden=False)
    assert keep.reports("a/b.txt")
    assert keep.reports("build/x.txt")
    for path in ("node_modules/x.js", "a/__pycache__/m.pyc", "x.pyc", ".git/HEAD", "a/.hidden/f", ".~x.ipynb",
                 "build/run.log", "a/.ipynb_checkpoints/n-checkpoint.ipynb", "~$report.docx", "f.txt~"):
        assert not keep.reports(path), path
    assert PathFilter([], allow_hidden=True).reports("a/.hidden/f")


def test_relative_path() -> None:
    root = os.sep + os.path.join("srv", "root")
    assert relative_path(root, os.path.join(root, "a", "b")) == "a/b"
    assert relative_path(root, root) is None
    assert relative_path(root, root + "2" + os.sep + "x") is None  # a sibling sharing the prefix


def test_coalesce_one_change_per_path(tmp_path: Path) -> None:
    keep = PathFilter([], allow_hidden=False)
    (tmp_path / "replaced").write_text("x")
    raw = {
        (ADDED, str(tmp_path / "new")), (MODIFIED, str(tmp_path / "new")),
        (DELETED, str(tmp_path / "replaced")), (ADDED, str(tmp_path / "replaced")),
        (ADDED, str(tmp_path / "gone")), (DELETED, str(tmp_path / "gone")),
        (MODIFIED, str(tmp_path / "m")), (ADDED, str(tmp_path / ".hidden")), (DELETED, str(tmp_path)),
    }
    assert coalesce(raw, tmp_path, keep) == [
        Change("gone", "deleted"), Change("m", "modified"), Change("new", "added"), Change("replaced", "modified"),
    ]


def test_api_save_is_tagged_and_later_external_edit_is_not(tmp_path: Path) -> None:
    clock = Clock()
    writes = ApiWrites(tmp_path, window_s=2.0, clock=clock)
    (tmp_path / "n.ipynb").write_text("{}")
    writes.record("save", "/n.ipynb", None)
    batch = [Change("n.ipynb", "modified"), Change("other.txt", "added")]
    assert [c.source for c in tag(batch, writes.snapshot(), tmp_path)] == ["api", "external"]

    # An editor writes the same file a moment later: size and mtime differ from the API's write.
    (tmp_path / "n.ipynb").write_text('{"cells": []}')
    os.utime(tmp_path / "n.ipynb", ns=(1, 1))
    assert tag([Change("n.ipynb", "modified")], writes.snapshot(), tmp_path)[0].source == "external"


def test_api_records_expire(tmp_path: Path) -> None:
    clock = Clock()
    writes = ApiWrites(tmp_path, window_s=2.0, clock=clock)
    (tmp_path / "f").write_text("x")
    writes.record("create", "f", None)
    clock.now += 2.5
    assert writes.snapshot() == {}
    assert tag([Change("f", "added")], writes.snapshot(), tmp_path)[0].source == "external"


def test_api_delete_covers_children_and_not_writes(tmp_path: Path) -> None:
    writes = ApiWrites(tmp_path, window_s=2.0, clock=Clock())
    writes.record("delete", "dir", None)
    tagged = tag([Change("dir", "deleted"), Change("dir/a", "deleted"), Change("dir/b", "added"),
                  Change("dirx", "deleted")], writes.snapshot(), tmp_path)
    assert [c.source for c in tagged] == ["api", "api", "external", "external"]


def test_api_rename_becomes_one_move(tmp_path: Path) -> None:
    writes = ApiWrites(tmp_path, window_s=2.0, clock=Clock())
    (tmp_path / "new.txt").write_text("x")
    writes.record("rename", "new.txt", "old.txt")
    tagged = tag([Change("new.txt", "added"), Change("old.txt", "deleted")], writes.snapshot(), tmp_path)
    assert tagged == [Change("new.txt", "moved", "api", old_path="old.txt")]
    assert tagged[0].event_data() == {"path": "new.txt", "change": "moved", "source": "api", "old_path": "old.txt"}


def test_api_copy_of_folder_tags_its_children(tmp_path: Path) -> None:
    writes = ApiWrites(tmp_path, window_s=2.0, clock=Clock())
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "f").write_text("x")
    writes.record("copy", "copy", "orig")
    tagged = tag([Change("copy", "added"), Change("copy/f", "added")], writes.snapshot(), tmp_path)
    assert [c.source for c in tagged] == ["api", "api"]


def test_watch_limit_errors_are_recognised() -> None:
    assert _watch_limit(OSError(errno.ENOSPC, "No space left on device"))
    assert _watch_limit(OSError("OS file watch limit reached. about [\"/srv\"] (MaxFilesWatch)"))
    assert _watch_limit(RuntimeError("error in underlying watcher: Too many open files (os error 24)"))
    assert not _watch_limit(OSError(errno.EIO, "Input/output error"))


@pytest.mark.parametrize(("values", "message"), [
    ({"step_ms": 600, "debounce_ms": 500}, "watch.step_ms"),
    ({"ignore": ["ok", ""]}, "watch.ignore"),
])
def test_config_checks(tmp_path: Path, values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WatchConfig(root=tmp_path, **values)  # type: ignore[arg-type]


async def test_bad_combination_stops_startup_with_a_named_error(tmp_path: Path) -> None:
    app = create_app(str(tmp_path), token="t", extensions=["watch"],
                     settings={"watch.step_ms": 900, "watch.debounce_ms": 100})
    with pytest.raises(RuntimeError, match=r"'watch' failed to start.*watch.step_ms"):
        async with app.lifespan():
            pass


def test_added_folder_reports_what_is_inside(tmp_path: Path) -> None:
    (tmp_path / "new" / "deeper" / "node_modules").mkdir(parents=True)
    (tmp_path / "new" / "deeper" / "f.txt").write_text("x")
    (tmp_path / "new" / "deeper" / "node_modules" / "m.js").write_text("x")
    changes = coalesce({(ADDED, str(tmp_path / "new"))}, tmp_path, PathFilter(DEFAULT_IGNORE, allow_hidden=False))
    assert changes == [Change("new", "added"), Change("new/deeper", "added"), Change("new/deeper/f.txt", "added")]


def test_known_paths_pair_an_external_move_by_inode(tmp_path: Path) -> None:
    from carme_watch.known import KnownPaths

    (tmp_path / "a.txt").write_text("moved")
    (tmp_path / "gone.txt").write_text("deleted")
    known = KnownPaths(tmp_path, PathFilter(DEFAULT_IGNORE, allow_hidden=False))
    known.scan()
    (tmp_path / "a.txt").rename(tmp_path / "b.txt")
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "fresh.txt").write_text("new")
    batch = known.apply([Change("a.txt", "deleted"), Change("gone.txt", "deleted"), Change("b.txt", "added"),
                         Change("fresh.txt", "added")])
    assert known.fold_moves(batch) == [Change("gone.txt", "deleted"), Change("b.txt", "moved", old_path="a.txt"),
                                       Change("fresh.txt", "added")]
    # an API rename is already one moved change (source api): left as it is
    (tmp_path / "b.txt").rename(tmp_path / "c.txt")
    batch = known.apply([Change("b.txt", "deleted"), Change("c.txt", "added")])
    api = [Change("c.txt", "moved", "api", old_path="b.txt")]
    assert known.fold_moves(api) == api


def test_known_paths_relabel_replaced_files(tmp_path: Path) -> None:
    from carme_watch.known import KnownPaths

    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "f").write_text("x")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "m.js").write_text("x")
    known = KnownPaths(tmp_path, PathFilter(DEFAULT_IGNORE, allow_hidden=False))
    known.scan()
    assert known.paths == {"dir", "dir/sub", "dir/sub/f"}
    assert known.apply([Change("dir/sub/f", "added"), Change("new", "added")]) == [
        Change("dir/sub/f", "modified"), Change("new", "added")]
    known.apply([Change("dir", "deleted")])
    assert known.paths == {"new"}
    assert known.apply([Change("dir/sub/f", "added")]) == [Change("dir/sub/f", "added")]


async def test_fallback_polling_is_stretched_on_big_trees(tmp_path: Path) -> None:
    from carme_watch.watcher import Watcher

    app = create_app(str(tmp_path), token="t", extensions=["watch"])
    config = WatchConfig(root=tmp_path, poll_delay_ms=1000)
    watcher = Watcher(app.server, config)
    assert await watcher._poll_delay() == 1000  # native: not used
    watcher.mode = "polling"
    watcher.known.paths = {f"f{i}" for i in range(200_000)}
    assert await watcher._poll_delay() == 4000  # a fallback: 1 ms per 50 paths
    chosen = Watcher(app.server, WatchConfig(root=tmp_path, polling=True, poll_delay_ms=300))
    chosen.known.paths = watcher.known.paths
    assert await chosen._poll_delay() == 300  # chosen by the user: kept
