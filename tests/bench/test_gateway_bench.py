"""The gateway benchmark runs end to end (quick mode, without the jupyter_server column) and
writes its table: no timing asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gateway_bench.py"


@pytest.mark.timeout(300)  # it starts an Enterprise Gateway (made with uv on first use), carme and kernels
def test_quick_run_against_the_gateway_directly_and_through_carme(tmp_path: Path) -> None:
    out = tmp_path / "gateway.md"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-jupyter-server", "--out", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = out.read_text()
    assert "| benchmark | direct (v1) | carme (v1) |" in table
    assert "carme / direct round trip p50" in table
    results = json.loads(out.with_suffix(".json").read_text())
    for label in ("direct", "carme"):  # both really ran code and got the whole print back
        assert results[label]["rt50_ms"] > 0 and results[label]["print_mb_s"] > 0
