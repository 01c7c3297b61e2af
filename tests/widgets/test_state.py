"""The pure widget-state model: comm messages in, widget-state JSON (version 2.0) out."""

from __future__ import annotations

import base64
import copy

import pytest
from ipywidgets.widgets.widget import _put_buffers, _remove_buffers

from carme_widgets.state import (
    CONTROL_TARGET,
    WIDGET_TARGET,
    BufferPathError,
    WidgetStore,
    put_buffers,
    remove_buffers,
)

SLIDER = {
    "_model_name": "IntSliderModel",
    "_model_module": "@jupyter-widgets/controls",
    "_model_module_version": "2.0.0",
    "_view_name": "IntSliderView",
    "value": 0,
    "max": 100,
    "layout": "IPY_MODEL_layout1",
}


def open_msg(comm_id: str, state: dict, target: str = WIDGET_TARGET, buffer_paths: list | None = None) -> dict:
    return {"comm_id": comm_id, "target_name": target,
            "data": {"state": copy.deepcopy(state), "buffer_paths": buffer_paths or []}}


def update_msg(comm_id: str, state: dict, method: str = "update", buffer_paths: list | None = None) -> dict:
    return {"comm_id": comm_id, "data": {"method": method, "state": state, "buffer_paths": buffer_paths or []}}


def test_open_update_echo_close() -> None:
    store = WidgetStore()
    assert store.apply("comm_open", open_msg("s1", SLIDER)) == "s1"
    assert store.apply("comm_msg", update_msg("s1", {"value": 7})) == "s1"
    assert store.get("s1").state["value"] == 7  # type: ignore[union-attr]
    assert store.apply("comm_msg", update_msg("s1", {"value": 9}, "echo_update")) == "s1"
    exported = store.export()
    assert exported["version_major"] == 2 and exported["version_minor"] == 0
    entry = exported["state"]["s1"]
    assert entry["model_name"] == "IntSliderModel"
    assert entry["model_module"] == "@jupyter-widgets/controls"
    assert entry["model_module_version"] == "2.0.0"
    assert entry["state"]["value"] == 9 and entry["state"]["max"] == 100
    assert "buffers" not in entry
    assert store.apply("comm_close", {"comm_id": "s1", "data": {}}) == "s1"
    assert store.export()["state"] == {}
    assert len(store) == 0


def test_non_state_messages_change_nothing() -> None:
    store = WidgetStore()
    store.apply("comm_open", open_msg("s1", SLIDER))
    before = store.export()
    assert store.apply("comm_msg", {"comm_id": "s1", "data": {"method": "custom", "content": {"event": "click"}}}) is None
    assert store.apply("comm_msg", {"comm_id": "s1", "data": {"method": "request_state"}}) is None
    assert store.apply("comm_open", open_msg("other", {"x": 1}, target="my.target")) is None
    assert store.apply("comm_msg", update_msg("other", {"x": 2})) is None  # not a widget comm
    assert store.apply("comm_msg", update_msg("unknown", {"value": 1})) is None
    assert store.apply("comm_close", {"comm_id": "unknown"}) is None
    assert store.export() == before


def test_buffers_in_open_and_update_round_trip_base64() -> None:
    store = WidgetStore()
    state = {**SLIDER, "_model_name": "ImageModel"}
    store.apply("comm_open", open_msg("img", state, buffer_paths=[["value"]]), [b"\x89PNG-1"])
    assert store.get("img").state["value"] == b"\x89PNG-1"  # type: ignore[union-attr]
    # An update carrying only a buffer (its key is absent from the JSON state).
    store.apply("comm_msg", update_msg("img", {}, buffer_paths=[["value"]]), [memoryview(b"\x00\x01\xff")])
    entry = store.export()["state"]["img"]
    assert "value" not in entry["state"]
    assert entry["buffers"] == [{"path": ["value"], "data": base64.b64encode(b"\x00\x01\xff").decode(), "encoding": "base64"}]
    # A later JSON value of the key replaces the buffer.
    store.apply("comm_msg", update_msg("img", {"value": None}))
    entry = store.export()["state"]["img"]
    assert entry["state"]["value"] is None and "buffers" not in entry


def test_nested_buffers_match_ipywidgets_encoding() -> None:
    """Our split/merge of buffers agrees with ipywidgets' own _remove_buffers/_put_buffers."""
    state = {"a": b"one", "nested": {"list": [1, b"two", {"deep": bytearray(b"three")}]}, "plain": [1, 2]}
    ours = remove_buffers(state)
    theirs = _remove_buffers(copy.deepcopy(state))
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]
    assert ours[2] == [bytes(b) for b in theirs[2]]
    assert state["a"] == b"one"  # the input is left alone
    rebuilt = copy.deepcopy(ours[0])
    put_buffers(rebuilt, ours[1], ours[2])
    reference = copy.deepcopy(theirs[0])
    _put_buffers(reference, theirs[1], theirs[2])
    assert rebuilt == {k: v for k, v in reference.items()}
    assert rebuilt["nested"]["list"][2]["deep"] == b"three"


@pytest.mark.parametrize("paths, buffers", [
    ([["missing", "x"]], [b"1"]),
    ([[]], [b"1"]),
    (["value"], [b"1"]),
    ([["plain", 5]], [b"1"]),
    ([["value"]], []),
])
def test_bad_buffer_paths_are_refused(paths: list, buffers: list) -> None:
    store = WidgetStore()
    with pytest.raises(BufferPathError):
        store.apply("comm_open", open_msg("w", {**SLIDER, "plain": [1]}, buffer_paths=paths), buffers)
    assert "w" not in store


def test_malformed_messages_raise_value_error_and_keep_state() -> None:
    store = WidgetStore()
    with pytest.raises(ValueError, match="comm_id"):
        store.apply("comm_open", {"target_name": WIDGET_TARGET, "data": {"state": {}}})
    with pytest.raises(ValueError, match="data.state"):
        store.apply("comm_open", {"comm_id": "x", "target_name": WIDGET_TARGET, "data": {"state": 3}})
    store.apply("comm_open", open_msg("s1", SLIDER))
    with pytest.raises(ValueError, match="no state"):
        store.apply("comm_msg", {"comm_id": "s1", "data": {"method": "update", "state": [1]}})
    assert store.get("s1").state == SLIDER  # type: ignore[union-attr]


def test_control_comm_update_states_refreshes_models() -> None:
    store = WidgetStore()
    store.apply("comm_open", {"comm_id": "ctl", "target_name": CONTROL_TARGET, "data": {}})
    states = {
        "s1": {"model_name": "IntSliderModel", "model_module": "@jupyter-widgets/controls",
               "model_module_version": "2.0.0", "state": {**SLIDER, "value": 5}},
        "img": {"model_name": "ImageModel", "model_module": "@jupyter-widgets/controls",
                "model_module_version": "2.0.0", "state": {"_model_name": "ImageModel"}},
    }
    data = {"method": "update_states", "states": states, "buffer_paths": [["img", "state", "value"]]}
    assert store.apply("comm_msg", {"comm_id": "ctl", "data": data}, [b"png"]) is None
    assert store.get("s1").state["value"] == 5  # type: ignore[union-attr]
    assert store.export()["state"]["img"]["buffers"][0]["path"] == ["value"]
    store.apply("comm_close", {"comm_id": "ctl", "data": {}})
    assert set(store.models) == {"s1", "img"}


def test_clear_forgets_everything() -> None:
    store = WidgetStore()
    store.apply("comm_open", open_msg("s1", SLIDER))
    store.clear()
    assert store.export()["state"] == {}


def test_models_share_repeated_short_strings() -> None:
    store = WidgetStore()
    store.apply("comm_open", open_msg("a", SLIDER))
    store.apply("comm_open", open_msg("b", {**SLIDER, "layout": "IPY_MODEL_layout2"}))
    a, b = store.get("a").state, store.get("b").state  # type: ignore[union-attr]
    assert a["_model_module"] == b["_model_module"] and a["_model_module"] is b["_model_module"]
    assert a == {**SLIDER} and b["layout"] == "IPY_MODEL_layout2"
