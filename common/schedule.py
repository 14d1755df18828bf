"""Scheduled jobs as the schedulers people already run: systemd timers and cron.

``fedlife-site schedule print`` and ``fedlife-coord schedule print`` describe their
jobs as :class:`Job` s; this module writes each one as a systemd service and timer
unit and as a crontab line. The commands are idempotent and exit 0 when there is
nothing to do, so the timer may fire as often as the operator likes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from common.errors import ConfigError


@dataclass(frozen=True)
class Job:
    """One scheduled command.

    Parameters
    ----------
    name : the unit's name, e.g. ``fedlife-site-st-mary-prepare``.
    description : one line for the unit's ``Description=``.
    command : the command line, as arguments (absolute program path first).
    hour, minute : when it runs each day (UTC of the host's clock).
    workdir : its working directory.
    """

    name: str
    description: str
    command: tuple[str, ...]
    hour: int
    minute: int
    workdir: str

    def __post_init__(self) -> None:
        if not (0 <= self.hour <= 23 and 0 <= self.minute <= 59):
            raise ConfigError(f"schedule: {self.hour}:{self.minute:02d} is not a time of day")


def service_unit(job: Job) -> str:
    """The ``.service`` unit: a oneshot running the command."""
    return (
        f"[Unit]\nDescription={job.description}\n\n"
        f"[Service]\nType=oneshot\nWorkingDirectory={job.workdir}\n"
        f"ExecStart={shlex.join(job.command)}\n"
    )


def timer_unit(job: Job) -> str:
    """The ``.timer`` unit: daily at the job's time; a missed run is caught up at boot."""
    return (
        f"[Unit]\nDescription=Daily: {job.description}\n\n"
        f"[Timer]\nOnCalendar=*-*-* {job.hour:02d}:{job.minute:02d}:00\nPersistent=true\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )


def crontab_line(job: Job) -> str:
    """The same job as one crontab line (flock keeps two runs from overlapping)."""
    lock = f"/tmp/{job.name}.lock"
    command = f"cd {shlex.quote(job.workdir)} && flock -n {lock} {shlex.join(job.command)}"
    return f"{job.minute} {job.hour} * * * {command}"


def render(jobs: list[Job]) -> str:
    """Every unit file (each under a ``# file:`` header), then the crontab lines."""
    parts = []
    for job in jobs:
        parts.append(f"# file: {job.name}.service\n{service_unit(job)}")
        parts.append(f"# file: {job.name}.timer\n{timer_unit(job)}")
    names = " ".join(f"{job.name}.timer" for job in jobs)
    parts.append(
        "# install: copy the files above to /etc/systemd/system/, then\n"
        f"#   systemctl daemon-reload && systemctl enable --now {names}\n"
        "# or, with cron instead, add these lines to crontab -e:\n"
        + "\n".join(crontab_line(job) for job in jobs)
        + "\n"
    )
    return "\n".join(parts)
