"""Notebook trust: signed on save when all cells are trusted, marked on open, compatible with
nbformat's notary (so with jupyter_server's signature database)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from nbformat.sign import NotebookNotary

from .conftest import Factory, notebook, write_notebook

HTML = [{"output_type": "display_data", "metadata": {}, "data": {"text/html": "<script>alert(1)</script>"}}]


def rich() -> dict[str, Any]:
    return notebook("display(HTML(...))", outputs=copy.deepcopy(HTML))


def trusted_flags(client: httpx.Client, path: str) -> list[Any]:
    content = client.get(f"/api/contents/{path}").json()["content"]
    return [c["metadata"].get("trusted") for c in content["cells"] if c["cell_type"] == "code"]


def test_saved_trusted_notebook_reopens_trusted(client: httpx.Client, root: Path) -> None:
    nb = rich()
    nb["cells"][0]["metadata"]["trusted"] = True
    client.put("/api/contents/t.ipynb", json={"type": "notebook", "format": "json", "content": nb})
    assert '"trusted"' not in (root / "t.ipynb").read_text()
    assert trusted_flags(client, "t.ipynb") == [True]
    # Changed behind the server's back: no longer trusted.
    text = (root / "t.ipynb").read_text().replace("alert(1)", "alert(2)")
    (root / "t.ipynb").write_text(text)
    assert trusted_flags(client, "t.ipynb") == [False]


def test_foreign_notebook_is_untrusted_until_trusted(client: httpx.Client, root: Path) -> None:
    write_notebook(root / "f.ipynb", rich())
    assert trusted_flags(client, "f.ipynb") == [False]
    # Saved back untrusted (as the frontend does): still untrusted.
    content = client.get("/api/contents/f.ipynb").json()["content"]
    client.put("/api/contents/f.ipynb", json={"type": "notebook", "format": "json", "content": content})
    assert trusted_flags(client, "f.ipynb") == [False]
    assert client.post("/api/contents/f.ipynb/trust").status_code == 201
    assert trusted_flags(client, "f.ipynb") == [True]
    (root / "a.txt").write_text("x")
    assert client.post("/api/contents/a.txt/trust").status_code == 400
    assert client.post("/api/contents/missing.ipynb/trust").status_code == 404


def long_strings() -> dict[str, Any]:
    """Strings hashed as pieces of their own (4 KiB and more, non-ASCII too) between short ones."""
    nb = notebook("x = 1\n" * 2000 + "é", outputs=copy.deepcopy(HTML))
    nb["cells"][0]["outputs"].append({"output_type": "stream", "name": "stdout", "text": "ü" * 5000})
    nb["cells"][0]["outputs"][0]["data"]["image/png"] = "iVBOR" * 2000
    return nb


@pytest.mark.parametrize("make", [rich, long_strings])
def test_signatures_shared_with_nbformat_notary(client: httpx.Client, root: Path, jupyter_env: Path,
                                                make: Any) -> None:
    data_dir = os.environ["JUPYTER_DATA_DIR"]
    # Signed by nbformat's notary (what jupyter_server uses): carme trusts it.
    write_notebook(root / "theirs.ipynb", make())
    with NotebookNotary(data_dir=data_dir) as notary:
        notary.sign(nbformat.read(root / "theirs.ipynb", as_version=4))
    assert trusted_flags(client, "theirs.ipynb") == [True]
    # Signed by carme: nbformat's notary agrees.
    nb = make()
    nb["cells"][0]["metadata"]["trusted"] = True
    client.put("/api/contents/ours.ipynb", json={"type": "notebook", "format": "json", "content": nb})
    with NotebookNotary(data_dir=data_dir) as notary:
        assert notary.check_signature(nbformat.read(root / "ours.ipynb", as_version=4))
    assert Path(data_dir, "notebook_secret").stat().st_mode & 0o077 == 0


def test_trust_off(server_with: Factory, root: Path) -> None:
    client = server_with(trust_notebooks=False)
    write_notebook(root / "f.ipynb", rich())
    assert trusted_flags(client, "f.ipynb") == [None]
    assert client.post("/api/contents/f.ipynb/trust").status_code == 501
