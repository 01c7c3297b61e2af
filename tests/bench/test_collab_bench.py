"""The collab benchmark's options: ``--only`` narrows the measures and the table (no servers run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import collab_bench  # noqa: E402


def empty() -> dict[str, list]:
    return {"lat": [], "cpu": [], "mem": [], "join": [], "save": []}


def test_only_is_every_measure_by_default_and_repeatable() -> None:
    assert collab_bench.parse_args([]).only == set(collab_bench.MEASURES)
    assert collab_bench.parse_args(["--only", "join"]).only == {"join"}
    assert collab_bench.parse_args(["--only", "join", "--only", "cpu"]).only == {"join", "cpu"}
    with pytest.raises(SystemExit):
        collab_bench.parse_args(["--only", "joins"])


def test_the_table_of_the_join_alone_has_only_its_rows() -> None:
    results = {"carme": empty(), "jupyter-collaboration": empty()}
    results["carme"].update(join=[0.3, 0.2, 0.4], save=[(0.1, "success")] * 3)
    results["jupyter-collaboration"].update(join=[0.8, 0.6, 0.7], save=[(0.5, "success")] * 3)
    text = collab_bench.table(results, 20, "header")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "benchmark" not in line]
    assert [row.split(" | ")[0] for row in rows] == ["| join a 20 MB notebook, cold room (s)",
                                                     "| save a 20 MB notebook after an edit (s)"]
    assert "| 0.3 | 0.7 | 0.43x | <= 0.5x | yes |" in rows[0]
    assert "join times, round by round (s): {'carme': [0.3, 0.2, 0.4]" in text


def test_the_table_without_the_join_has_no_join_rows() -> None:
    results = {"carme": empty(), "jupyter-collaboration": empty()}
    results["carme"]["cpu"], results["jupyter-collaboration"]["cpu"] = [0.0005], [0.002]
    text = collab_bench.table(results, 20, "header")
    assert "| server CPU per update, 10 clients typing (us) | 500 |" in text and "| 0.25x |" in text
    assert "join" not in text and "latency" not in text
