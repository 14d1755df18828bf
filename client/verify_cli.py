"""``fedlife-site verify``: every table's data files, the ledger and the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from client.privacy.ledger_chain import LedgerChain
from client.site_audit import site_audit
from client.store import SiteStore
from common.cli import one_line_errors
from common.config import load_site_config
from common.errors import StoreError

console = Console()
CONFIG = typer.Option(..., "--config", "-c", help="The site's site.toml.")


def register(app: typer.Typer) -> None:
    """Add verify to ``fedlife-site``."""
    app.command("verify")(verify_command)


@one_line_errors
def verify_command(config: Path = CONFIG, *, as_json: bool = typer.Option(False, "--json")) -> None:
    """Check every table's data files against the checksums recorded at their commits,
    and the privacy ledger's and audit log's hash chains; name the first bad file."""
    site_config = load_site_config(config)
    store = SiteStore(site_config.store_dir)
    checked = store.verify_latest()
    log = site_audit(site_config)
    problem = log.verify()
    if problem is not None:
        raise StoreError(f"{log.path}: audit log is broken at {problem}")
    releases = len(LedgerChain(site_config.store_dir).releases())
    if as_json:
        print(
            json.dumps(
                {"tables": checked, "audit_entries": len(log.entries()), "releases": releases}
            )
        )
        return
    for table, files in checked.items():
        shown = (
            "no checksums recorded yet (written before)" if files < 0 else f"{files} file(s) intact"
        )
        console.print(f"{table}: {shown}", highlight=False)
    console.print(
        f"audit log intact: {len(log.entries())} entries; privacy ledger intact: "
        f"{releases} releases",
        highlight=False,
    )
