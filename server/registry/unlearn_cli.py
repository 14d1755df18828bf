"""``fedlife-coord models affected``, ``unlearn`` and ``audit verify``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from common.cli import one_line_errors
from common.errors import RunDirError
from server.registry.unlearning import affected_models, fork_for_unlearning, parse_purged
from server.run_dir import RunDirectory

console = Console()
PURGED = typer.Option(
    [], "--purged", help="SITE:V[,V...] clean versions a site reports purged (repeatable)."
)
audit_app = typer.Typer(help="The coordinator's hash-chained audit log.", no_args_is_help=True)


def register(app: typer.Typer, models_app: typer.Typer) -> None:
    """Add ``models affected``, ``unlearn`` and ``audit verify`` to ``fedlife-coord``."""
    models_app.command("affected")(models_affected)
    app.command("unlearn")(unlearn_command)
    app.add_typer(audit_app, name="audit")


@one_line_errors
def models_affected(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories to check."),
    purged: list[str] = PURGED,
    *,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Checkpoints built on table versions that sites purged by erasure."""
    for run_dir in run_dirs:
        _require_run(run_dir)
    found = affected_models(run_dirs, parse_purged(purged))
    if as_json:
        print(
            json.dumps(
                [
                    {"run_dir": a.run_dir, "round": a.round, "used": [list(u) for u in a.used]}
                    for a in found
                ]
            )
        )
        return
    table = Table(title="models trained on purged versions")
    for column in ("run", "round", "purged versions used (site v@round)"):
        table.add_column(column)
    for model in found:
        used = ", ".join(f"{site} v{version}@{n}" for site, version, n in model.used)
        table.add_row(model.run_dir, str(model.round), used)
    console.print(table if found else "no model was trained on a purged version")


@one_line_errors
def unlearn_command(
    run_dir: Path = typer.Argument(..., help="The run whose models must unlearn."),
    site: str = typer.Option(..., "--site", help="The site whose purged versions to unlearn."),
    versions: str = typer.Option(
        "", "--purged", help="V[,V...] purged versions, if the run has not recorded them."
    ),
    out: Path | None = typer.Option(None, "--out", help="The replay's run directory."),
) -> None:
    """Replay the run from its last checkpoint before the purged versions were used."""
    purged = parse_purged([f"{site}:{versions}"]) if versions else {}
    target, after = fork_for_unlearning(run_dir, site, purged, out)
    start = f"round {after}" if after else "the initial model"
    shown = f"wrote {target}: replays from {start} without the purged versions"
    console.print(shown, highlight=False)
    console.print(
        f"resume it to train on the sites' current data: fedlife-sim run --resume {target} "
        f"(or flwr run . --run-config 'run-dir=\"{target}\" resume=true')",
        highlight=False,
        soft_wrap=True,
    )


@audit_app.command("verify")
@one_line_errors
def audit_verify(run_dir: Path = typer.Argument(..., help="The run directory.")) -> None:
    """Check a run's audit log; name the first edited, removed or moved entry."""
    _require_run(run_dir)
    log = RunDirectory(run_dir).audit()
    problem = log.verify()
    if problem is not None:
        raise RunDirError(f"{log.path}: audit log is broken at {problem}")
    console.print(f"audit log intact: {len(log.entries())} entries", highlight=False)


def _require_run(run_dir: Path) -> None:
    if not (run_dir / "run.json").is_file():
        raise RunDirError(f"{run_dir}: not a fedlife run directory (no run.json)")
