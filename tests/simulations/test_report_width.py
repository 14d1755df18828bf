"""The run's closing table fits the terminal: a table at 120 columns, blocks at 80."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from server.report.terminal import print_report


def _site(rows: int, duplicates: int, missing: int) -> dict:
    return {
        "rows": rows,
        "injected": {"duplicates": duplicates, "outliers": 3, "missing": missing},
        "found": {
            "rows_read": rows + duplicates,
            "duplicates_dropped": duplicates,
            "values_imputed": missing,
            "values_clipped": 1,
            "rows_clean": rows,
            "gate": "pass",
        },
    }


SUMMARY = {
    "run_dir": "/home/operator/fedlife/runs/sweep-20261205-143309-589561/eps-3.0_seed-1",
    "site_data": {f"site-{i:03d}": _site(99 + i, 5 + i, 101 + i) for i in range(5)},
    "site_nodes": {f"site-{i:03d}": "f52577d465567b478df0ebd18cbcf4e8" for i in range(5)},
    "epsilon_spent": {f"site-{i:03d}": 2.9979305 for i in range(5)},
    "epsilon_budget": {f"site-{i:03d}": 3.0 for i in range(5)},
    "excluded": [],
    "profile_excluded": [],
    "stopped_reason": "",
    "rounds": 15,
    "test_accuracy": 0.9122807017543859,
    "evaluated_on": "central test split",
    "wall_s": 34.606,
}


def _render(width: int) -> list[str]:
    out = io.StringIO()
    print_report(SUMMARY, Console(file=out, width=width, color_system=None))
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 120])
def test_the_closing_report_fits_the_terminal(width):
    lines = _render(width)
    assert max(len(line) for line in lines) <= width
    assert not any("…" in line for line in lines)  # no header or cell cut short
    text = "\n".join(lines)
    for site in SUMMARY["site_data"]:
        assert site in text
    assert "dup 5" in text and "2.998 / 3" in text and "test accuracy 0.9123" in text


def test_a_narrow_terminal_gets_one_block_per_site_not_a_wrapped_table():
    lines = _render(80)
    assert sum(line.startswith("site-") for line in lines) == len(SUMMARY["site_data"])
    assert not any(line.startswith(("┏", "┃", "│")) for line in lines)
