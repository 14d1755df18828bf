"""``fedlife-site classify``: each column's data class and where its values may go.

The class follows from the column's role in the schema (and, for a feature, its
``public`` flag); it is declared, never guessed from the data. ``leaves`` says what
of the column may reach the federation: ``never``, or aggregates only (DP model
updates and releases, histograms over groups of at least ``min_group_size``,
coarsened metrics: docs/privacy/threat-model.md lists every field that leaves).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from common.cli import one_line_errors
from common.config import ColumnSpec, Role, load_site_config

console = Console()
CONFIG = typer.Option(..., "--config", "-c", help="The site's site.toml.")

AGGREGATES = "federation aggregates"
# role -> (class, where it may go beyond the site's store)
_BY_ROLE = {
    Role.ID: ("identifier", "never"),
    Role.PII: ("personal", "never"),
    Role.TIMESTAMP: ("personal", "never"),
    Role.IGNORE: ("personal", "never"),
    Role.SENSITIVE: ("sensitive", f"{AGGREGATES} (fairness by group)"),
    Role.LABEL: ("label", f"{AGGREGATES} (DP updates, coarsened metrics)"),
    Role.FEATURE: ("feature", f"{AGGREGATES} (DP updates and releases)"),
}


@dataclass(frozen=True)
class ColumnClass:
    """One column's classification."""

    column: str
    role: str
    data_class: str
    kept_in: str
    leaves: str


def classify_column(name: str, spec: ColumnSpec) -> ColumnClass:
    """The class of the column ``name`` declared by ``spec``."""
    data_class, leaves = _BY_ROLE[spec.role]
    if spec.role is Role.FEATURE and spec.public:
        data_class, leaves = "public", f"{AGGREGATES} (exact statistics allowed)"
    return ColumnClass(name, spec.role.value, data_class, "store", leaves)


def register(app: typer.Typer) -> None:
    """Add classify to ``fedlife-site``."""
    app.command("classify")(classify_command)


@one_line_errors
def classify_command(
    config: Path = CONFIG, *, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Print every column's role, class and where its values may go, from the schema."""
    schema = load_site_config(config).schema
    classes = [classify_column(name, spec) for name, spec in schema.columns.items()]
    if as_json:
        print(json.dumps([asdict(c) for c in classes]))
        return
    table = Table(title="column classification")
    for heading in ("column", "role", "class", "kept in", "may leave as"):
        table.add_column(heading)
    for c in classes:
        table.add_row(c.column, c.role, c.data_class, c.kept_in, c.leaves)
    console.print(table)
