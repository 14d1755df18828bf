"""``fedlife-site retain``, ``erase``, ``lookup``, ``migrate``, ``rotate-key``, ``audit verify``."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import typer
from rich.console import Console

from client.privacy.ledger_chain import LedgerChain
from client.retention.erasure import ErasureRequests, site_key, subject_digest
from client.retention.lookup import subject_rows
from client.retention.pseudonymize import ensure_pseudonymized, marker, migrate
from client.retention.retain import RetentionReport, retain
from client.retention.rotate import rotate_key_command
from client.site_audit import site_audit
from common.cli import one_line_errors
from common.config import Role, load_site_config
from common.errors import ConfigError, StoreError
from common.terminal import FittedTable, print_fitted

console = Console()
CONFIG = typer.Option(..., "--config", "-c", help="The site's site.toml.")
audit_app = typer.Typer(help="The site's hash-chained audit log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add retain, erase, lookup, migrate, rotate-key and audit to ``fedlife-site``."""
    app.command("retain")(retain_command)
    app.command("erase")(erase_command)
    app.command("lookup")(lookup_command)
    app.command("migrate")(migrate_command)
    app.command("rotate-key")(rotate_key_command)
    app.add_typer(audit_app, name="audit")


@one_line_errors
def retain_command(
    config: Path = CONFIG,
    *,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be removed."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Apply the retention policy and pending erasure requests to every table."""
    report = retain(load_site_config(config), dry_run=dry_run)
    _show(report, as_json=as_json)


@one_line_errors
def erase_command(
    subject_ids: list[str] = typer.Argument(..., help="Ids (the column with role 'id')."),
    config: Path = CONFIG,
    *,
    now: bool = typer.Option(False, "--now", help="Carry the requests out at once."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Record erasure requests (as keyed hashes); ``retain`` or ``--now`` carries them out."""
    site_config = load_site_config(config)
    if site_config.schema.first_with(Role.ID) is None:
        raise ConfigError(f"{config}: erasure needs a schema column with role 'id'")
    if any(not s.strip() for s in subject_ids):
        raise ConfigError("a subject id is empty")
    key = site_key(site_config.store_dir)
    digests = {subject: subject_digest(key, subject) for subject in subject_ids}
    new = ErasureRequests(site_config.store_dir).add(list(digests.values()))
    site_audit(site_config).append("erase-request", requests=new)
    if not now:
        console.print(
            f"recorded {len(new)} erasure request(s); run fedlife-site retain to "
            "carry them out (or erase --now)",
            highlight=False,
        )
        return
    report = retain(site_config, expire=False)
    _show(report, as_json=as_json)
    if not as_json:
        for subject, digest in digests.items():
            rows = report.requests.get(digest, 0)
            outcome = f"{rows} row(s) erased" if rows else "no rows found at this site"
            console.print(f"{subject}: {outcome}", highlight=False)


@one_line_errors
def lookup_command(
    subject_id: str = typer.Argument(..., help="The subject's id (the column with role 'id')."),
    config: Path = CONFIG,
    *,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a subject's rows in every table (the store holds its id as a pseudonym)."""
    site_config = load_site_config(config)
    ensure_pseudonymized(site_config)
    stored, found = subject_rows(site_config, subject_id)
    if as_json:
        print(
            json.dumps(
                {
                    "pseudonym": stored,
                    "tables": [
                        {"source": f.source, "version": f.version, "rows": f.rows.to_dicts()}
                        for f in found
                    ],
                },
                default=str,
            )
        )
        return
    console.print(f"{subject_id} is stored as {stored}", highlight=False, soft_wrap=True)
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        fmt_str_lengths=72,
        tbl_width_chars=200,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
    ):
        for part in found:
            version = "" if part.version is None else f" (version {part.version})"
            console.print(f"{part.source}{version}: {part.rows.height} row(s)", highlight=False)
            print(part.rows)


@one_line_errors
def migrate_command(config: Path = CONFIG) -> None:
    """Rewrite a store written with clear ids with pseudonyms (drops older versions)."""
    site_config = load_site_config(config)
    if marker(site_config).exists():
        console.print(f"{site_config.store_dir}: ids are pseudonymized already", highlight=False)
        return
    done = migrate(site_config)
    console.print(done.describe(), highlight=False, soft_wrap=True)


@audit_app.command("verify")
@one_line_errors
def audit_verify(config: Path = CONFIG) -> None:
    """Check the audit log's and the privacy ledger's hash chains against each other;
    name the first edited, removed or moved entry."""
    site_config = load_site_config(config)
    log = site_audit(site_config)
    problem = log.verify()
    if problem is not None:
        raise StoreError(f"{log.path}: audit log is broken at {problem}")
    # The ledger remembers the audit log's head: a removed or cut-back log fails here.
    releases = LedgerChain(site_config.store_dir).releases()
    console.print(
        f"audit log intact: {len(log.entries())} entries; privacy ledger intact: "
        f"{len(releases)} releases",
        highlight=False,
    )


def _show(report: RetentionReport, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json()))
        return
    verb = "would remove" if report.dry_run else "removed"
    table = FittedTable(
        f"retention at {report.site}" + (" (dry run)" if report.dry_run else ""),
        (
            "table",
            "rows",
            "expired",
            "erased",
            "archived",
            "new version",
            "versions dropped",
            "files vacuumed",
            "note",
        ),
        right=frozenset({"rows", "expired", "erased", "files vacuumed"}),
    )
    for t in report.tables:
        table.rows.append(
            (
                t.table,
                str(t.rows),
                str(t.expired),
                str(t.erased),
                "yes" if t.archived else "-",
                "-" if t.new_version is None else str(t.new_version),
                ", ".join(map(str, t.versions_dropped)) or "-",
                str(t.files_vacuumed),
                t.note,
            )
        )
    if report.tables:
        print_fitted(console, table)
    else:
        console.print(f"{report.site}: no tables in the store yet (run fedlife-site prepare)")
    if report.archive_erased:
        rows = sum(report.archive_erased.values())
        files = len(report.archive_erased)
        console.print(f"archive: {verb} {rows} erased row(s) from {files} file(s)")
    if report.archive_expired:
        console.print(f"archive: {verb} {len(report.archive_expired)} expired file(s)")
    if report.sheets_erased:
        console.print(f"queue sheets: {verb} erased rows from {len(report.sheets_erased)} file(s)")
    found = sum(1 for rows in report.requests.values() if rows)
    if report.requests:
        console.print(f"erasure requests: {found} of {len(report.requests)} matched rows")
    erased = [v for t in report.tables if t.table == "clean" for v in t.versions_erased]
    if erased and not report.dry_run:
        versions = ",".join(map(str, erased))
        console.print(
            f"clean versions purged by erasure: {versions} (tell the coordinator: "
            f"fedlife-coord models affected RUN_DIR --purged {report.site}:{versions})",
            highlight=False,
            soft_wrap=True,
        )
