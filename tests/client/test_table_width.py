"""``init`` and ``retain`` tables fit 80 and 120 columns: no line wider, no heading cut."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from client.pipeline.init import infer_schema, inferred_table
from client.retention import cli as retention_cli
from client.retention.cli import _show
from client.retention.retain import RetentionReport, TableOutcome
from common.terminal import WIDE_TABLE_COLUMNS, FittedTable, print_fitted

WIDTHS = [80, 120]


def _render(width: int, show) -> list[str]:
    out = io.StringIO()
    show(Console(file=out, width=width, color_system=None))
    return out.getvalue().splitlines()


def _fits(lines: list[str], width: int) -> None:
    assert max(len(line) for line in lines) <= width, "\n".join(lines)
    assert not any("…" in line for line in lines), "\n".join(lines)  # nothing cut short


REPORT = RetentionReport(
    site="st-mary-hospital",
    dry_run=True,
    tables=[
        TableOutcome(
            "quarantine",
            rows=1_204_311,
            expired=88_120,
            erased=3,
            archived="/srv/fedlife/archive/quarantine/2026-12-05.parquet",
            new_version=14,
            files_vacuumed=12,
            versions_dropped=[9, 10, 11, 12],
            note="no 'seen' column: rows kept",
        ),
        TableOutcome("clean", rows=1_116_191, expired=88_120, new_version=15, files_vacuumed=3),
    ],
)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_retain_table_fits(width, monkeypatch):
    def show(console: Console) -> None:
        monkeypatch.setattr(retention_cli, "console", console)
        _show(REPORT, as_json=False)

    lines = _render(width, show)
    _fits(lines, width)
    text = "\n".join(lines)
    for needle in ("quarantine", "1204311", "88120", "9, 10, 11, 12", "'seen'"):
        assert needle in text, text
    for heading in ("expired", "erased", "archived", "vacuumed", "dropped"):
        assert heading in text, text


@pytest.mark.parametrize("width", WIDTHS)
def test_the_init_table_fits(width, messy_csv):
    table = inferred_table(infer_schema(messy_csv))
    lines = _render(width, lambda console: print_fitted(console, table))
    _fits(lines, width)
    text = "\n".join(lines)
    for column in ("patient_id", "alcohol", "magnesium", "proline", "comment", "target"):
        assert column in text, text
    assert "decimal comma" in text  # a note, folded but whole


def test_a_narrow_terminal_gets_blocks_a_wide_one_a_table():
    table = FittedTable("t", ("name", "count", "note"), [("a", "1", ""), ("b", "2", "why")])
    narrow = _render(WIDE_TABLE_COLUMNS - 1, lambda console: print_fitted(console, table))
    assert narrow == ["t", "a", "  count 1", "b", "  count 2; note why"]
    wide = _render(WIDE_TABLE_COLUMNS, lambda console: print_fitted(console, table))
    assert any(line.startswith("┃") and "count" in line for line in wide), wide
