"""jupyter_nbmodel_client (a third-party client of jupyter-collaboration) against carme."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from jupyter_nbmodel_client import NbModelClient, get_jupyter_notebook_websocket_url
from pycrdt import Text

from tests.collab.clients import eventually, joined
from tests.conftest import TOKEN
from tests.serving import Served


async def test_nbmodel_client_and_a_pycrdt_client_converge(collab: Served, root: Path) -> None:
    ws_url = await asyncio.to_thread(get_jupyter_notebook_websocket_url, collab.url, "demo.ipynb", TOKEN)
    async with NbModelClient(ws_url) as nbmodel, joined(collab.ws_url, collab.url, "demo.ipynb") as plain:
        await nbmodel.wait_until_synced()
        assert [c["source"] for c in nbmodel.as_dict()["cells"]] == ["a = 1", "print(a)"]
        nbmodel.add_code_cell("from nbmodel")
        plain.doc.append_cell({"cell_type": "markdown", "source": "from pycrdt", "metadata": {}, "id": "md"})
        first: Text = plain.doc.ycells[0]["source"]
        first += "0"

        def sources() -> list[str]:
            return [c["source"] for c in nbmodel.as_dict()["cells"]]

        await eventually(lambda: len(sources()) == 4 and sources()[0] == "a = 10", "nbmodel to see every edit")
        await eventually(lambda: sorted(str(c["source"]) for c in plain.doc.ycells)
                         == sorted(sources()), "the pycrdt client to see every edit")
        disk = lambda: sorted("".join(c["source"]) for c in json.loads((root / "demo.ipynb").read_text())["cells"])  # noqa: E731
        await eventually(lambda: disk() == sorted(sources()), "the notebook on disk")
