"""The event bus: /api/events/subscribe (websocket), POST /api/events, schemas of extensions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets.sync.client as ws_client
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.exceptions import InvalidStatus

from carme import create_app, hookimpl
from carme.events import EventSchema
from carme.server import Server
from tests.polling import wait_until
from tests.serving import AUTH, TOKEN, Served, serve

BUILD = "https://events.example.org/build/v1"


class Builds:
    """An extension with its own event schema, emitting from one of its routes."""

    name = "builds"

    @hookimpl
    def carme_register_event_schemas(self) -> list[EventSchema]:
        return [EventSchema(BUILD, 1, "Builds", {"target": {"type": "string"},
                                                 "state": {"enum": ["started", "done"]}}, ("target", "state"))]

    @hookimpl
    def carme_register_routes(self, server: Server) -> list[Route]:
        async def build(request: Request) -> Response:
            request.app.state.server.events.emit(BUILD, {"target": request.path_params["target"], "state": "started"})
            return Response(status_code=202)

        return [Route("/builds/{target}", build, methods=["POST"])]


@pytest.fixture
def events_served(root: Path) -> Iterator[Served]:
    with serve(create_app(str(root), token=TOKEN, plugins=[Builds()], extensions=[])) as served:
        yield served


def subscribe(served: Served, **kwargs: object) -> ws_client.ClientConnection:
    return ws_client.connect(served.ws_url + "/api/events/subscribe", additional_headers=AUTH, **kwargs)  # type: ignore[arg-type]


def test_hook_carme_register_event_schemas(events_served: Served) -> None:
    with subscribe(events_served) as ws:
        assert httpx.post(events_served.url + "/builds/docs", headers=AUTH).status_code == 202
        event = json.loads(ws.recv(timeout=10))
    assert event.pop("timestamp").endswith("Z")
    assert event == {"schema_id": BUILD, "version": 1, "target": "docs", "state": "started"}


def test_post_event_reaches_every_subscriber(events_served: Served) -> None:
    with subscribe(events_served) as first, subscribe(events_served) as second:
        body = {"schema_id": BUILD, "version": 1, "data": {"target": "x", "state": "done"}}
        # JupyterLab may send JSON bodies as text/plain.
        answer = httpx.post(events_served.url + "/api/events", headers={**AUTH, "Content-Type": "text/plain"},
                            content=json.dumps(body))
        assert answer.status_code == 204
        for ws in (first, second):
            event = json.loads(ws.recv(timeout=10))
            assert (event["schema_id"], event["target"], event["state"]) == (BUILD, "x", "done")


@pytest.mark.parametrize(("body", "message"), [
    ({"schema_id": "https://nope/v1", "version": 1, "data": {}}, "unknown event schema 'https://nope/v1'"),
    ({"schema_id": BUILD, "version": 2, "data": {"target": "x", "state": "done"}}, "has version 1, not 2"),
    ({"schema_id": BUILD, "version": 1, "data": {"target": "x"}}, "missing required ['state']"),
    ({"schema_id": BUILD, "version": 1, "data": {"target": 3, "state": "done"}}, "target = 3 is not of type string"),
    ({"schema_id": BUILD, "version": 1, "data": {"target": "x", "state": "odd"}}, "is not one of ['started', 'done']"),
    ({"schema_id": BUILD, "version": 1, "data": []}, "needs schema_id (string) and data (object)"),
    ({"version": 1, "data": {}}, "needs schema_id (string) and data (object)"),
    ([1, 2], "request body must be a JSON object"),
])
def test_post_bad_event(events_served: Served, body: object, message: str) -> None:
    answer = httpx.post(events_served.url + "/api/events", headers=AUTH, json=body)
    assert answer.status_code == 400
    assert message in answer.json()["message"]


def test_post_malformed_json(events_served: Served) -> None:
    answer = httpx.post(events_served.url + "/api/events", headers=AUTH, content=b"{nope")
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["message"]


def test_subscribe_requires_auth(events_served: Served) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws_client.connect(events_served.ws_url + "/api/events/subscribe")
    assert refused.value.response.status_code == 403
    with ws_client.connect(events_served.ws_url + f"/api/events/subscribe?token={TOKEN}") as ws:
        ws.ping().wait(10)


def test_unsubscribed_client_is_forgotten(events_served: Served) -> None:
    server = events_served.app.server
    with subscribe(events_served) as ws:
        ws.ping().wait(10)
        assert len(server.events._listeners) == 1
    wait_until(lambda: not server.events._listeners, "the listener to be removed after the client left")
