"""The OS watch limit and unreadable folders: a clear log line and a watcher that keeps working.

Each test runs the real ``carme serve`` in a subprocess under real OS limits: a user namespace
whose inotify watch limit is tiny (``/proc/sys/user/max_inotify_watches`` is per namespace), or an
unprivileged user who cannot read one folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import httpx
import pytest

from tests.environment import isolated_environ
from tests.processes import CarmeServe, only
from tests.serving import AUTH, TOKEN, Served
from tests.polling import wait_until
from tests.watch.conftest import Subscriber, subscribe



def _runs(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder any user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="carme-watch-"))
    path.chmod(0o755)
    for name in ("config", "data", "runtime"):
        (path / name).mkdir(mode=0o777)
        (path / name).chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def serve_watching(carme_serve: Callable[..., CarmeServe], shared_dir: Path) -> Callable[..., tuple[Served, CarmeServe]]:
    """``serve_watching(root, prefix)``: `carme serve root` with only the watch extension, run
    through ``prefix``, its Jupyter paths and HOME in ``shared_dir``; once it watches."""
    def start(root: Path, prefix: list[str]) -> tuple[Served, CarmeServe]:
        process = carme_serve("--token", TOKEN, *only("watch"), root_dir=root, cwd=shared_dir, prefix=prefix,
                              env={**isolated_environ(shared_dir), "HOME": str(shared_dir)})
        served = Served(process.base_url(), None, 0)
        wait_until(lambda: _watch_status(served).get("state") == "watching", "carme serve to watch")
        return served, process

    return start


def _watch_status(served: Served) -> dict[str, object]:
    return httpx.get(served.url + "/api/watch", headers=AUTH).json()


LIMITED_NS = ["unshare", "--user", "--map-root-user", "sh", "-c", 'echo 8 > /proc/sys/user/max_inotify_watches && exec "$@"',
              "limited"]


@pytest.mark.skipif(not _runs(["unshare", "--user", "--map-root-user", "sh", "-c",
                               "echo 8 > /proc/sys/user/max_inotify_watches"]),
                    reason="this kernel does not allow a user namespace with its own inotify limit")
def test_watch_limit_falls_back_to_polling(shared_dir: Path, serve_watching: Callable[..., Any]) -> None:
    root = shared_dir / "root"
    for i in range(40):  # 41 folders, 8 inotify watches allowed
        (root / f"d{i:02}").mkdir(parents=True)
    served, process = serve_watching(root, LIMITED_NS)
    status = _watch_status(served)
    assert status["mode"] == "polling"
    assert "max_user_watches" in str(status["problem"])
    with subscribe(served) as ws:
        (root / "d07" / "seen.txt").write_text("x")
        Subscriber(ws).wait_change("d07/seen.txt", "added")
    process.wait_for("limit on file watches.*polling")


@pytest.mark.skipif(os.geteuid() != 0 or not _runs(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                                      "true"]),
                    reason="needs root to run carme as an unprivileged user")
def test_unreadable_folder_is_skipped(shared_dir: Path, serve_watching: Callable[..., Any]) -> None:
    root = shared_dir / "root"
    (root / "locked" / "inner").mkdir(parents=True)
    (root / "open").mkdir()
    root.chmod(0o777)
    (root / "open").chmod(0o777)
    (root / "locked").chmod(0o700)  # owned by root: the server's user cannot read it
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    served, process = serve_watching(root, nobody)
    status = _watch_status(served)
    assert status["mode"] == "native"
    assert "cannot be read" in str(status["problem"])
    with subscribe(served) as ws:
        events = Subscriber(ws)
        (root / "locked" / "inner" / "hidden-from-server.txt").write_text("x")
        (root / "open" / "seen.txt").write_text("x")
        events.wait_change("open/seen.txt", "added")
        assert not any(e["path"].startswith("locked/") for e in events.events)
    process.wait_for("cannot be read and are not watched")


@pytest.mark.skipif(os.geteuid() != 0 or not _runs(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                                      "true"]),
                    reason="needs root to run as an unprivileged user")
def test_readable_cover_lists_the_readable_part(shared_dir: Path) -> None:
    import json

    root = shared_dir / "root"
    for folder in ("a/x", "a/locked/deep", "b/y", "c/locked2"):
        (root / folder).mkdir(parents=True)
    for folder in ("a/locked", "c/locked2"):
        (root / folder).chmod(0o700)
    code = "import json, sys; from pathlib import Path; from carme_watch.coverage import readable_cover; " \
           "print(json.dumps(readable_cover(Path(sys.argv[1]))))"
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code,
                           str(root)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    cover, unreadable = json.loads(done.stdout)
    assert [os.path.relpath(p, root) for p in cover] == [".", "a", "a/x", "b", "c"]
    assert [os.path.relpath(p, root) for p in unreadable] == ["a/locked", "c/locked2"]


def test_readable_cover_of_a_readable_tree(tmp_path: Path) -> None:
    from carme_watch.coverage import readable_cover

    (tmp_path / "a" / "b").mkdir(parents=True)
    assert readable_cover(tmp_path) == ([str(tmp_path)], [])
