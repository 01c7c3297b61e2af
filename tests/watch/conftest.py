"""Fixtures for the watch extension: carme with `watch` on a real uvicorn, an event subscriber."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from carme.events import CONTENTS_SCHEMA
from carme.hooks import hookimpl
from carme_watch import FILE_CHANGED, Change
from tests.polling import DEADLINE_S, wait_until
from tests.serving import AUTH, Served

class Clock:
    """A clock for ApiWrites that moves only when the test moves it (``clock.now += 2.5``)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def watcher_of(served: Served) -> Any:
    return served.app.server.services["watch"]


def wait_watching(served: Served, generation: int = 1) -> None:
    watcher = watcher_of(served)
    wait_until(lambda: watcher.state == "watching" and watcher.generation >= generation,
               f"the watcher to watch (generation {generation})")


class Recorder:
    """A plugin implementing carme_watch_on_files_changed: keeps every batch (called on the server's loop)."""

    def __init__(self) -> None:
        self.batches: list[list[Change]] = []
        self._lock = threading.Lock()

    @hookimpl
    def carme_watch_on_files_changed(self, server: Any, changes: list[Change]) -> None:
        with self._lock:
            self.batches.append(list(changes))

    def changes(self) -> list[Change]:
        with self._lock:
            return [c for batch in self.batches for c in batch]


class Subscriber:
    """A websocket client on /api/events/subscribe that keeps the file_changed events it gets."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], what: str,
                 deadline_s: float = DEADLINE_S) -> dict[str, Any]:
        """Read events until one matches ``predicate`` (earlier ones are kept in ``events``)."""
        for event in self.events:
            if predicate(event):
                return event
        end = time.monotonic() + deadline_s
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no event {what}; got {self.events}")
            try:
                frame = self.ws.recv(timeout=left)
            except TimeoutError:
                continue
            event = orjson.loads(frame)
            if event.get("schema_id") != FILE_CHANGED:
                continue
            self.events.append(event)
            if predicate(event):
                return event

    def wait_change(self, path: str, change: str, source: str = "external") -> dict[str, Any]:
        return self.wait_for(lambda e: e["path"] == path and e["change"] == change and e["source"] == source,
                             f"{change} {path} ({source})")

    def paths(self) -> set[str]:
        return {e["path"] for e in self.events}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def watch_settings() -> dict[str, Any]:
    """Settings of the watched app; tests override this fixture's result by parametrizing."""
    return {}


@pytest.fixture
def watched(serve_app: Callable[..., Served], recorder: Recorder, watch_settings: dict[str, Any]) -> Served:
    """carme with only the watch extension (and the recorder plugin), watching and served."""
    running = serve_app(extensions=["watch"], plugins=[recorder], settings=watch_settings)
    wait_watching(running)
    return running


@contextlib.contextmanager
def subscribe(served: Served) -> Iterator[ClientConnection]:
    """A subscriber that is surely registered: it has received a probe event posted after connecting."""
    with connect(served.ws_url + "/api/events/subscribe", additional_headers=AUTH,
                 proxy=None, open_timeout=DEADLINE_S) as ws:
        probe = {"schema_id": CONTENTS_SCHEMA, "version": 1, "data": {"action": "get", "path": "probe"}}
        response = httpx.post(served.url + "/api/events", json=probe, headers=AUTH)
        assert response.status_code == 204, response.text
        while orjson.loads(ws.recv(timeout=DEADLINE_S)).get("path") != "probe":
            pass
        yield ws


@pytest.fixture
def events(watched: Served) -> Iterator[Subscriber]:
    with subscribe(watched) as ws:
        yield Subscriber(ws)
