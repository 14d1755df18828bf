"""Tables that fit the terminal: a table where there is room, one block per row below.

A table of seven or more columns at 80 columns wraps every row over several lines
and cuts headers short (``federati…``); below :data:`WIDE_TABLE_COLUMNS` each row is
printed as its first cell, then its other cells as ``heading value`` on one indented
line. No cell or heading is ever cut short: what does not fit is folded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

# Below this many columns a table of seven or more columns wraps each row.
WIDE_TABLE_COLUMNS = 100
_EMPTY = ("", "-")


@dataclass
class FittedTable:
    """A table's title, headings and rows of text, printed by :func:`print_fitted`.

    Parameters
    ----------
    title : printed above the table (or the blocks).
    columns : the headings; the first names each row's block on a narrow terminal.
    rows : one tuple of cells per row, as many as ``columns``; plain text, no markup.
    right : headings whose cells are right-aligned (counts) in the wide table.
    """

    title: str
    columns: Sequence[str]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    right: frozenset[str] = frozenset()

    @property
    def row_count(self) -> int:
        return len(self.rows)


def print_fitted(console: Console, fitted: FittedTable) -> None:
    """``fitted`` as a table on a terminal at least :data:`WIDE_TABLE_COLUMNS` wide,
    else as one block per row; empty cells (``""``, ``"-"``) are left out of a block."""
    if console.width >= WIDE_TABLE_COLUMNS:
        table = Table(title=escape(fitted.title))
        for heading in fitted.columns:
            justify: JustifyMethod = "right" if heading in fitted.right else "left"
            table.add_column(heading, justify=justify, overflow="fold")
        for row in fitted.rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
        return
    console.print(Text(fitted.title, style="bold"), overflow="fold")
    for first, *rest in fitted.rows:
        cells = [
            f"{heading} {cell}"
            for heading, cell in zip(fitted.columns[1:], rest, strict=True)
            if cell not in _EMPTY
        ]
        console.print(Text(first, style="bold"), overflow="fold")
        if cells:  # indented, wrapped lines keep the indent
            console.print(
                Padding(Text("; ".join(cells)), (0, 0, 0, 2), expand=False), overflow="fold"
            )
