"""``fedlife-site schedule print``: the site's jobs as systemd timers and crontab lines.

Prepare, then retention (and backup, where ``fedlife-site`` has that command), once a
day each, an hour apart. Every one is idempotent: a prepare with no new input and a
retention with nothing expired exit 0 and change nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from common.cli import console_script, one_line_errors
from common.config import load_site_config
from common.schedule import Job, render

JOBS = (
    ("prepare", "prepare new raw data into the next clean version"),
    ("retain", "apply the retention policy and pending erasure requests"),
    ("backup", "write an encrypted backup of the store"),
)


def site_jobs(config: Path, commands: set[str], hour: int, minute: int) -> list[Job]:
    """The site's daily jobs for ``config``: those of :data:`JOBS` in ``commands``."""
    site = load_site_config(config)  # a bad site.toml: one line, nothing printed
    Job("check", "", (), hour, minute, "")  # an impossible time: one line, nothing printed
    program = console_script("fedlife-site")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", site.site.name).strip("-") or "site"
    config = config.resolve()
    jobs = []
    for offset, (command, description) in enumerate(j for j in JOBS if j[0] in commands):
        jobs.append(
            Job(
                name=f"fedlife-site-{slug}-{command}",
                description=f"fedlife site {site.site.name}: {description}",
                command=(program, command, "--config", str(config)),
                hour=(hour + offset) % 24,
                minute=minute,
                workdir=str(config.parent),
            )
        )
    return jobs


def register(app: typer.Typer) -> None:
    """Add ``schedule print`` to ``fedlife-site`` (the site's other commands decide which)."""
    schedule_app = typer.Typer(help="Scheduled site jobs (systemd, cron).", no_args_is_help=True)
    app.add_typer(schedule_app, name="schedule")

    @schedule_app.command("print")
    @one_line_errors
    def print_command(
        config: Path = typer.Option(..., "--config", "-c", help="The site's site.toml."),
        hour: int = typer.Option(2, help="Hour of the first job each day (0-23)."),
        minute: int = typer.Option(0, help="Minute of every job (0-59)."),
    ) -> None:
        """Print systemd service and timer units, and crontab lines, for prepare and retain."""
        commands = {c.name for c in app.registered_commands if c.name}
        print(render(site_jobs(config, commands, hour, minute)), end="")
