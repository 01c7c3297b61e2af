"""bench/dashboards_exec.py runs end to end (quick mode) and prints its table: no timing asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dashboards_exec.py"


@pytest.mark.timeout(300)  # it starts a kernel and floods it; the subprocess has 240 s
def test_quick_run_prints_every_row_with_numbers() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line}
    for name in ("first cell (print(1)), ms", "5 small cells, ms", "server CPU per flood message, us",
                 "executor work per stream message (in isolation), us"):
        assert re.fullmatch(r"\d+\.\d+", rows[name]), (name, rows)
    assert float(rows["first cell (print(1)), ms"]) > 0
