"""What carme-collab adds to JupyterLab's page config: collaboration on, server-side execution as
the setting says, and the collaboration frontend's plugins that need APIs carme does not serve
turned off."""

from __future__ import annotations

from typing import Any

import pytest

from carme_collab.plugin import UNSERVED_PLUGINS
from tests.lab.conftest import page_config
from tests.serving import Served

COLLAB_FRONTEND = {"@jupyter/docprovider-extension", "@jupyter/collaboration-extension"}


@pytest.fixture
def collab_extensions() -> list[str]:
    return ["lab", "collab"]


@pytest.fixture
def collab_settings() -> dict[str, Any]:
    return {"collab.server_side_execution": True, "lab.page_config": {"disabledExtensions": ["some:plugin"]}}


def test_page_config_turns_collaboration_on(collab: Served) -> None:
    with collab.client() as client:
        response = client.get("/lab")
        assert response.status_code == 200
        config = page_config(response.text)
    assert (config["disableRTC"], config["serverSideExecution"]) == (False, True)
    assert COLLAB_FRONTEND <= {ext["name"] for ext in config["federated_extensions"]}
    # The document timeline would ask for /api/collaboration/timeline, which answers 404 here.
    assert UNSERVED_PLUGINS[0] == "@jupyter/docprovider-extension:statusBarTimeline"
    assert set(UNSERVED_PLUGINS) | {"some:plugin"} <= set(config["disabledExtensions"])
    with collab.client() as client:
        assert client.get("/api/collaboration/timeline/demo.ipynb?format=json&type=notebook").status_code == 404
