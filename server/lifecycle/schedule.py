"""``fedlife-coord schedule print``: the coordinator's retrain job as a systemd timer
and a crontab line (``retrain`` exits 0 when there is nothing to do)."""

from __future__ import annotations

from pathlib import Path

import typer

from common.cli import console_script, one_line_errors
from common.errors import RunDirError
from common.schedule import Job, render
from server.lifecycle.trigger import parse_condition

DEFAULT_WHEN = "new_versions >= 2 or drift > 0.25 or days_since >= 30"


def coordinator_jobs(state: Path, from_run: Path, when: str, hour: int, minute: int) -> list[Job]:
    """The daily retrain job of a coordinator's state folder."""
    parse_condition(when)  # a bad expression fails now, not at 3 am
    if not (from_run / "run.json").exists():
        raise RunDirError(f"{from_run}: parent run does not exist (no run.json)")
    state = state.resolve()
    command = (
        console_script("fedlife-coord"),
        "retrain",
        "--state",
        str(state),
        "--from",
        str(from_run.resolve()),
        "--when",
        when,
    )
    return [
        Job(
            name="fedlife-coord-retrain",
            description=f"fedlife coordinator: retrain when {when}",
            command=command,
            hour=hour,
            minute=minute,
            workdir=str(state),
        )
    ]


def register(app: typer.Typer) -> None:
    """Add ``schedule print`` to ``fedlife-coord``."""
    schedule_app = typer.Typer(help="Scheduled coordinator jobs (systemd, cron).")
    app.add_typer(schedule_app, name="schedule")

    @schedule_app.command("print")
    @one_line_errors
    def print_command(
        state: Path = typer.Option(..., "--state", help="The coordinator's state folder."),
        from_run: Path = typer.Option(..., "--from", help="The deployed model's run."),
        when: str = typer.Option(DEFAULT_WHEN, "--when", help="retrain's condition."),
        hour: int = typer.Option(4, help="Hour it runs each day (0-23)."),
        minute: int = typer.Option(0, help="Minute (0-59)."),
    ) -> None:
        """Print the systemd service and timer units, and a crontab line, for retrain."""
        print(render(coordinator_jobs(state, from_run, when, hour, minute)), end="")
