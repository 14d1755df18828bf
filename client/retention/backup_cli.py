"""``fedlife-site backup`` and ``restore``: the store into sealed snapshots and back."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console

from client.retention.backup import backup
from client.retention.restore import restore
from common.cli import one_line_errors
from common.config import load_site_config
from common.errors import BackupKeyError, ConfigError

console = Console()
CONFIG = typer.Option(..., "--config", "-c", help="The site's site.toml.")
PASSPHRASE_ENV = "FEDLIFE_BACKUP_PASSPHRASE"
PASSPHRASE_FILE = typer.Option(
    None,
    "--passphrase-file",
    help=f"A file holding the backup passphrase (kept off the store); else ${PASSPHRASE_ENV}, "
    "else a prompt.",
)


def register(app: typer.Typer) -> None:
    """Add backup and restore to ``fedlife-site``."""
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


def passphrase(path: Path | None) -> str:
    """The backup passphrase: from ``path``, the environment, or a prompt (in that order)."""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise BackupKeyError(f"{path}: passphrase file not found") from None
        except OSError as error:
            raise BackupKeyError(f"{path}: cannot read the passphrase ({error.strerror})") from None
        if not text:
            raise BackupKeyError(f"{path}: passphrase file is empty")
        return text
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    if not sys.stdin.isatty():
        raise BackupKeyError(
            f"no backup passphrase: give --passphrase-file or set ${PASSPHRASE_ENV}"
        )
    return typer.prompt("backup passphrase", hide_input=True)


@one_line_errors
def backup_command(
    config: Path = CONFIG,
    to: Path = typer.Option(..., "--to", help="The backup folder (outside the store)."),
    passphrase_file: Path | None = PASSPHRASE_FILE,
    *,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Write an encrypted, checksummed snapshot of the store to a backup folder.

    Only files not already in the folder are copied; snapshots older than
    retention.backup_max_age_days are pruned.
    """
    site_config = load_site_config(config)
    report = backup(site_config, to, passphrase(passphrase_file))
    if as_json:
        print(json.dumps(asdict(report)))
        return
    console.print(
        f"snapshot {report.snapshot}: {report.files} files, {report.copied} copied, "
        f"{report.bytes_written:,} bytes written, {len(report.pruned)} old snapshot(s) pruned",
        highlight=False,
    )


@one_line_errors
def restore_command(
    config: Path = CONFIG,
    source: Path = typer.Option(..., "--from", help="The backup folder."),
    passphrase_file: Path | None = PASSPHRASE_FILE,
    at: str | None = typer.Option(
        None, "--at", help="Restore the newest snapshot taken at or before this ISO time."
    ),
    *,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Restore a snapshot into the site's empty store, applying later erasures again."""
    site_config = load_site_config(config)
    when = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise ConfigError(f"--at {at!r} is not an ISO time (e.g. 2026-01-31T12:00)") from None
    report = restore(site_config, source, passphrase(passphrase_file), at=when)
    if as_json:
        print(json.dumps(asdict(report)))
        return
    console.print(
        f"restored snapshot {report.snapshot}: {report.files} files; privacy ledger from the "
        f"{report.ledger} ({report.releases} releases); {report.erasures_reapplied} later "
        f"erasure request(s) applied again ({report.rows_erased} rows)",
        highlight=False,
    )
