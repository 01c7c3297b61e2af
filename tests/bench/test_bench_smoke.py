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
    # one by one, with a further client of the kernel: it got every message too
    assert results["carme"]["obo_v1"]["value"] > 0
    assert results["carme"]["obo2_v1"]["value"] is not None
    assert results["carme"]["obo_lost_v1"]["value"] == 0
    # the README's embedding snippet (carme.run) serves kernels too
    assert results["carme embedded"]["flood_n_v1"]["value"] == 500


def run_bench(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(BENCH.with_name(script)), *args], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.timeout(300)
def test_put_peak_measures_one_big_put() -> None:
    table = run_bench("put_peak.py", "--mb", "20")
    row = next(line for line in table.splitlines() if line.startswith("| carme |"))
    idle, peak = (float(cell) for cell in row.split("|")[3:5])
    assert peak > idle > 1  # the high-water mark was read, and the body went through the server


@pytest.mark.timeout(300)
def test_lab_bench_loads_jupyterlab_to_an_idle_kernel() -> None:
    table = run_bench("lab_bench.py", "--rounds", "1", "--targets", "carme")
    row = next(line for line in table.splitlines() if line.startswith("| carme |"))
    requests, megabytes = int(row.split("|")[3]), float(row.split("|")[4])
    assert requests > 10 and megabytes > 0.1  # JupyterLab's bundle came, and the kernel went idle
