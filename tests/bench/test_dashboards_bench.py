"""bench/dashboards_bench.py runs end to end (quick mode, carme's columns) and prints its table:
no timing asserted. (The Voila columns need Voila installed into the bench's own venv.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dashboards_bench.py"


@pytest.mark.timeout(300)  # it starts servers, pools and a small crowd of visitors; the subprocess has 240 s
def test_quick_run_renders_every_visit() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--targets", "carme,carme pooled"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line}
    for name in ("first byte", "first cell's output", "last cell's output (full render)"):
        assert all(re.fullmatch(r"\d+", value) for value in rows[name]), (name, rows)
    assert rows["pages not rendered"] == ["0", "0"]
    assert rows["pages rendered"] == ["4/4"]
    assert rows["kernels left after they left"] == ["0"]
