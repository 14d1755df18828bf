"""``fedlife-site classify``: each column's data class and where its values may go.

The class is the one site.toml declares for the column (``class``, which ``init``
writes and which must agree with the role: ``common.data_classes``), else the one
its role implies (and, for a feature, its ``public`` flag); never guessed from the
data. A ``pii`` column is validated, then dropped: it is kept nowhere. ``leaves`` says what
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
# role -> where its values may go beyond the site's store
_LEAVES = {
    Role.ID: "never",
    Role.PII: "never",
    Role.TIMESTAMP: "never",
    Role.IGNORE: "never",
    Role.SENSITIVE: f"{AGGREGATES} (fairness by group)",
    Role.LABEL: f"{AGGREGATES} (DP updates, coarsened metrics)",
    Role.FEATURE: f"{AGGREGATES} (DP updates and releases)",
}


@dataclass(frozen=True)
class ColumnClass:
    """One column's classification."""

    column: str
    role: str
    data_class: str
    kept_in: str
    leaves: str
    declared: bool


def classify_column(name: str, spec: ColumnSpec) -> ColumnClass:
    """The class of the column ``name`` declared by ``spec`` (or implied by its role)."""
    leaves = _LEAVES[spec.role]
    if spec.role is Role.FEATURE and spec.public:
        leaves = f"{AGGREGATES} (exact statistics allowed)"
    kept_in = "nowhere (dropped after validation)" if spec.role is Role.PII else "store"
    if spec.role is Role.ID:
        kept_in = "store, as keyed pseudonyms"
    return ColumnClass(
        name, spec.role.value, spec.classified.value, kept_in, leaves, spec.data_class is not None
    )


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
        shown = c.data_class if c.declared else f"{c.data_class} (role's; not declared)"
        table.add_row(c.column, c.role, shown, c.kept_in, c.leaves)
    console.print(table)
