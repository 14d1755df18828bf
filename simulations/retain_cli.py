"""``fedlife-sim retain RUN_DIR``: every virtual site applies its retention policy.

Each site's ``retain`` (its policy and pending erasure requests, see
``client.retention.retain``) runs as a Ray task pinned to the node holding that site's
data (``simulations.site_jobs``), as its preparation did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from common.cli import one_line_errors
from common.errors import ConfigError


def retain_sites(
    sites_dir: Path, *, dry_run: bool = False, ray_address: str = ""
) -> dict[str, Any]:
    """Run ``retain_site`` for every site under ``sites_dir``, each on its own node.

    Parameters
    ----------
    sites_dir : folder of virtual sites (``site-NNN/site.toml``).
    dry_run : only report what each site would remove and archive.
    ray_address : an existing cluster whose nodes offer the sites' resources
        ('' = a private local Ray).
    """
    from client.retention.retain import retain_site
    from simulations.ray_runtime import check_reachable, private_ray
    from simulations.site_jobs import run_per_site

    tomls = {p.parent.name: str(p) for p in sorted(Path(sites_dir).glob("*/site.toml"))}
    if not tomls:
        raise ConfigError(f"{sites_dir}: no virtual sites here (site-NNN/site.toml)")
    if ray_address:
        check_reachable(ray_address)
    with private_ray(address=ray_address or None, sites=list(tomls)):
        return run_per_site(retain_site, tomls, dry_run=dry_run)


@one_line_errors
def retain_command(
    run_dir: Path = typer.Argument(..., help="A fedlife-sim run directory (or its sites/)."),
    *,
    dry_run: bool = typer.Option(False, "--dry-run", help="Report only; change nothing."),
    ray_address: str = typer.Option("", help="Existing Ray cluster ('' = a private one)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Apply every virtual site's retention policy and erasure requests, on its node."""
    sites_dir = run_dir / "sites" if (run_dir / "sites").is_dir() else run_dir
    outcomes = retain_sites(sites_dir, dry_run=dry_run, ray_address=ray_address)
    if as_json:
        print(json.dumps(outcomes))
        return
    table = Table(title=f"retention{' (dry run)' if dry_run else ''} in {sites_dir}")
    for column in ("site", "node", "rows expired", "rows erased", "versions dropped", "error"):
        table.add_column(column)
    for site, outcome in outcomes.items():
        tables = (outcome.get("result") or {}).get("tables", [])
        table.add_row(
            site,
            str(outcome.get("node_id", ""))[:12],
            str(sum(t["expired"] for t in tables)),
            str(sum(t["erased"] for t in tables)),
            str(sum(len(t["versions_dropped"]) for t in tables)),
            outcome.get("error", ""),
        )
    Console().print(table)
