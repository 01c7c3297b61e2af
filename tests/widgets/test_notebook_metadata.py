"""Writing widget state into notebook metadata (pure part of the widgets.save_state setting)."""

from __future__ import annotations

import nbformat

from carme_widgets.notebook import put_widget_state
from carme_widgets.state import STATE_MIMETYPE, WidgetStore

SLIDER = {"_model_name": "IntSliderModel", "_model_module": "@jupyter-widgets/controls",
          "_model_module_version": "2.0.0", "value": 42}


def test_state_goes_into_metadata_and_validates() -> None:
    store = WidgetStore()
    store.apply("comm_open", {"comm_id": "m1", "target_name": "jupyter.widget",
                              "data": {"state": dict(SLIDER), "buffer_paths": [["raw"]]}}, [b"\x00\x01"])
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/other": {"keep": True}}
    as_dict = nbformat.from_dict(nb)
    put_widget_state(as_dict, store.export())
    saved = as_dict["metadata"]["widgets"][STATE_MIMETYPE]
    assert saved["version_major"] == 2 and saved["state"]["m1"]["state"]["value"] == 42
    assert saved["state"]["m1"]["buffers"] == [{"path": ["raw"], "data": "AAE=", "encoding": "base64"}]
    assert as_dict["metadata"]["widgets"]["application/other"] == {"keep": True}
    nbformat.validate(nbformat.from_dict(as_dict))  # nbformat's schema accepts the widget-state entry


def test_no_live_widgets_removes_stale_state() -> None:
    nb = {"metadata": {"widgets": {STATE_MIMETYPE: {"version_major": 2, "version_minor": 0, "state": {"x": {}}}}},
          "cells": []}
    put_widget_state(nb, WidgetStore().export())
    assert "widgets" not in nb["metadata"]
    bare: dict = {"cells": []}
    put_widget_state(bare, WidgetStore().export())
    assert bare["metadata"] == {}
