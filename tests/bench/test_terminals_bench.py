"""The terminals benchmark runs end to end (quick mode, without the anchor's column): carme, the
floor server and the bare pty reader all really carried the floods and the keystrokes. No timing
asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "terminals_bench.py"


@pytest.mark.timeout(300)  # it starts carme and the floor server, and floods real ptys
def test_quick_run_against_the_floor_and_the_ceiling(tmp_path: Path) -> None:
    out = tmp_path / "terminals.md"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-anchor", "--out", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in out.read_text().splitlines() if line.startswith("| ") and "---" not in line}
    for kind in ("base64", "cat"):
        carme, anchor, _ratio, _target, met, floor, ceiling = rows[f"flood throughput, 2 MB by `{kind}` (MB/s)"]
        # Every side got the whole flood (the client waits for the end marker) at some rate.
        assert float(carme) > 0 and float(floor) > 0 and float(ceiling) > 0
        assert anchor == "nan" and met == ""  # no anchor, no verdict
    carme, _anchor, _ratio, _target, _met, floor, _ceiling = rows["keystroke echo round trip p50 (ms)"]
    assert float(carme) > 0 and float(floor) > 0
