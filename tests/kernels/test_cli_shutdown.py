"""`carme serve` stopped by a signal shuts its kernels down: no process, no connection file."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.processes import CarmeServe, only, pid_alive


@pytest.mark.parametrize("signum", [signal.SIGTERM])
def test_a_signal_to_carme_serve_stops_its_kernels(signum: int, carme_serve: Callable[..., CarmeServe],
                                                   jupyter_env: Path) -> None:
    carme = carme_serve(*only(), "--token", "t")
    with httpx.Client(base_url=carme.base_url(), headers={"Authorization": "token t"}, timeout=90) as http:
        session = http.post("/api/sessions", json={"path": "nb.ipynb", "type": "notebook"}).json()
    files = list((jupyter_env / "runtime").glob("kernel-*.json"))
    assert [f.name for f in files] == [f"kernel-{session['kernel']['id']}.json"]
    # The kernels are children of carme in their own process groups; find their pids.
    pids = [int(p) for p in Path(f"/proc/{carme.proc.pid}/task/{carme.proc.pid}/children").read_text().split()]
    assert len(pids) == 1 and all(pid_alive(pid) for pid in pids)
    carme.proc.send_signal(signum)
    assert carme.wait() == 0
    assert not [pid for pid in pids if pid_alive(pid)]
    assert not list((jupyter_env / "runtime").glob("kernel-*.json"))
