"""The benchmark script runs end to end (quick mode) and produces its table: no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"


@pytest.mark.timeout(300)  # the bench starts its own servers and kernels: the subprocess has 240 s
def test_quick_run_against_carme_and_the_direct_floor(tmp_path: Path) -> None:
    out = tmp_path / "latest.md"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--targets", "direct ZMQ,carme,carme embedded", "--out", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = out.read_text()
    assert "| benchmark | direct ZMQ | carme |" in table
    assert "execute `pass` round trip p50 (ms)" in table
    results = json.loads(out.with_suffix(".json").read_text())
    floor = results["direct ZMQ"]
    # The floor client really talked to a kernel: every flood message arrived, the print came back.
    assert floor["k_start"]["value"] > 0
    assert floor["rt50_zmq"]["value"] > 0
    assert floor["print_zmq"]["value"] > 0
    assert floor["flood_n_zmq"]["value"] == 500
    assert results["carme"]["rss_idle"]["value"] > 1
    # the README's embedding snippet (carme.run) serves kernels too
    assert results["carme embedded"]["flood_n_v1"]["value"] == 500
