"""carme + carme-lab from their wheels in a clean venv: no tornado, traitlets (beyond what
jupyter_core itself needs), jupyter_server or jupyter_client, and `carme serve` shows /lab with
carme's own labextension."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.lab.conftest import page_config
from tests.processes import CarmeServe
from tests.wheels import Wheelhouse, clean_venv, run, uv_env

FORBIDDEN = ("tornado", "jupyter_server", "jupyter_client", "jupyterlab", "jupyterlab_server", "notebook")

CHECK = """
import importlib.metadata as md, importlib.util, json, sys
forbidden = sys.argv[1].split(",")
found = {name: importlib.util.find_spec(name) is not None for name in forbidden + ["traitlets"]}
needs_traitlets = sorted({d.metadata["Name"] for d in md.distributions()
                          if any(r.split(";")[0].strip().lower().startswith("traitlets") and "extra ==" not in r
                                 for r in (d.requires or []))})
import carme_lab.plugin, carme
print(json.dumps({"found": found, "needs_traitlets": needs_traitlets}))
"""


@pytest.mark.timeout(600)  # a clean venv: its dependencies are installed (downloaded on a cold cache)
def test_clean_venv_from_wheels(tmp_path: Path, wheels: Wheelhouse, carme_serve: Callable[..., CarmeServe]) -> None:
    bin_dir = clean_venv(tmp_path / "venv", wheels["carme"], wheels["carme-lab"])
    report = json.loads(run(bin_dir / "python", "-c", CHECK, ",".join(FORBIDDEN), cwd=tmp_path))
    assert not any(report["found"][name] for name in FORBIDDEN), report
    # traitlets comes in only because jupyter_core (Jupyter's path functions) and nbformat require
    # it; nothing that carme or carme-lab brings in asks for it.
    assert set(report["needs_traitlets"]) <= {"jupyter_core", "nbformat"}, report
    assert (bin_dir.parent / "share" / "jupyter" / "lab" / "static" / "index.html").is_file()

    server = carme_serve("--token", "wheel-token", program=[str(bin_dir / "carme")], env=uv_env())
    assert server.url().endswith("/lab?token=wheel-token")  # `carme serve` points the user at /lab
    with httpx.Client(base_url=server.base_url(), timeout=30) as client:
        response = client.get("/lab", params={"token": "wheel-token"})
        assert response.status_code == 200
        assert '"appVersion": "4.6.5"' in response.text
        assert client.get("/static/lab/main.580360276a959490.js").status_code == 200
        assert client.get("/", follow_redirects=False).headers["location"] == "/lab"
        # carme's own labextension came in the wheel and loads as a prebuilt one.
        config = page_config(response.text)
        (ours,) = [ext for ext in config["federated_extensions"] if ext["name"] == "@carme/jupyterlab"]
        assert client.get(f"/lab/extensions/@carme/jupyterlab/{ours['load']}").status_code == 200
