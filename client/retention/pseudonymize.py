"""Migration of a store written with clear ids into pseudonymized form.

Stores written before ids were pseudonymized (``client.privacy.pseudonyms``) hold
the id column, row ids built from it and ``pii`` columns in clear, in every table
version, archive file and queue sheet. The migration rewrites each table's latest
version as one new version (ids and row ids as pseudonyms, ``pii`` columns dropped,
lineage kept), then vacuums every other version's data files with no retention and
deletes their log entries: those files held the clear ids (and a log's min/max
statistics may quote them), so time travel to a version before the migration is
gone. Archives, queue sheets, profile caches, raw-file copies and commits set aside
by ``repair`` get the same treatment (rewritten or deleted).

It runs on the first ``prepare`` that finds such a store, or on
``fedlife-site migrate``; ``<store>/pseudonyms.json`` records that it was done.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from client.privacy.pseudonyms import (
    id_column,
    personal_columns,
    pseudonyms,
    row_id_pseudonym,
    site_key,
)
from client.retention import history as delta_history
from client.retention.archive import Archive
from client.sealed_files import write_sealed
from client.site_audit import site_audit
from client.store import RAW_FILES, ROW_ID, SiteStore
from client.store_repair import BACKUP_DIR
from common.config import SiteConfig
from common.errors import StoreError

MARKER = "pseudonyms.json"
OPERATION = "pseudonymize"
_ARCHIVED = ("raw", "quarantine")  # written compactly, as prepare writes them
# Tables whose id column says which row ids were built from it (the others are mapped).
_WITH_IDS = ("raw", "quarantine", "unlabeled", "clean")
_POSITION = re.compile(r"^.+:\d+$")  # '<file>:<line>': a row id that names no one
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}(#\d+)?$")  # a row id built from a pseudonym


@dataclass
class Migration:
    """What a migration rewrote: table -> its new version, files rewritten or removed."""

    tables: dict[str, int] = field(default_factory=dict)
    files_vacuumed: int = 0
    archive_files: int = 0
    sheets: int = 0
    removed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the operator."""
        tables = ", ".join(f"{t} v{v}" for t, v in self.tables.items()) or "no table"
        return (
            f"the store held clear ids: pseudonymized ({tables}; {self.archive_files} archive "
            f"file(s), {self.sheets} queue sheet(s)); versions before it are gone"
        )


def marker(config: SiteConfig) -> Path:
    return config.store_dir / MARKER


def needs_migration(config: SiteConfig) -> bool:
    """Whether the store may hold clear ids or pii values (written before pseudonyms)."""
    schema = config.schema
    if id_column(schema) is None and not personal_columns(schema):
        return False
    if marker(config).exists():
        return False
    store = config.store_dir
    return any(
        (
            delta_history.delta_tables(store / "tables") if (store / "tables").is_dir() else [],
            _archive(config, keyed=False).files(),  # listing files needs no key
            list((store / "labeling").glob("queue-v*.csv")),
            (store / RAW_FILES).exists(),
        )
    )


def ensure_pseudonymized(config: SiteConfig, *, create: bool = False) -> Migration | None:
    """Migrate the store where it needs it (see the module); mark a new store as done.

    Parameters
    ----------
    config : the site's config.
    create : make the store (and its record) where it does not exist yet (prepare).

    Returns what was migrated, or None where there was nothing to do.
    """
    if not needs_migration(config):
        new = not marker(config).exists()
        if new and (create or (config.store_dir / "tables").is_dir()):  # written with pseudonyms
            _mark(config, Migration())
        return None
    return migrate(config)


def migrate(config: SiteConfig) -> Migration:
    """Rewrite every table, archive file and sheet of the store with pseudonyms."""
    key = site_key(config.store_dir)
    store = SiteStore(config.store_dir)
    schema = config.schema
    column = id_column(schema)
    personal = personal_columns(schema)
    tables = (
        delta_history.delta_tables(store.root / "tables")
        if (store.root / "tables").is_dir()
        else []
    )
    # Only the id and row id columns of every table at once; each table whole in turn.
    keys = {path.name: _key_columns(store, path, column) for path in tables}
    mapping = _row_id_mapping(keys, column, key)
    done = Migration()
    for path in tables:
        table = path.name
        latest = store.latest(table)
        assert latest is not None
        if latest.lineage.get("operation") == OPERATION:
            new_version = latest.version  # a migration that stopped after this table
        elif _holds_pseudonyms(keys[table], column):
            continue  # written with pseudonyms (a store whose record was lost)
        else:
            frame = _pseudonymized(store.read(table), column, personal, mapping, key)
            lineage: dict[str, object] = {
                k: v for k, v in latest.lineage.items() if k not in ("parent_version", "rows")
            }
            lineage["operation"] = OPERATION
            new_version = store.write(table, frame, lineage, archive=table in _ARCHIVED).version
        done.files_vacuumed += len(delta_history.vacuum(path, 0, dry_run=False))
        delta_history.truncate_history(path, new_version)
        done.tables[table] = new_version
    archive = _archive(config)
    for file in archive.files():
        frame = archive.read(file)
        if _holds_pseudonyms(frame, column):
            continue
        archive._write(_pseudonymized(frame, column, personal, mapping, key), file)  # noqa: SLF001 - the archive's own atomic write
        done.archive_files += 1
    for sheet in sorted((config.store_dir / "labeling").glob("queue-v*.csv")):
        rows = pl.read_csv(sheet, infer_schema=False).rename({"row_id": ROW_ID})
        if _holds_pseudonyms(rows.rename({ROW_ID: "_id"}), "_id"):
            continue
        rows = _pseudonymized(rows, column, personal, mapping, key)
        sheet_text = rows.rename({ROW_ID: "row_id"}).write_csv()
        write_sealed(config.store_dir, sheet, sheet_text.encode("utf-8"))  # replaces the plain one
        done.sheets += 1
    # Copies of raw files, profile caches (label issues name row ids) and commits set
    # aside by repair (their statistics) may quote clear values: none is needed.
    for name in (RAW_FILES, "reports", BACKUP_DIR):
        if (config.store_dir / name).exists():
            shutil.rmtree(config.store_dir / name)
            done.removed.append(name)
    for stage in config.store_dir.glob(".stage-*"):
        shutil.rmtree(stage, ignore_errors=True)
    _mark(config, done)
    site_audit(config).append(
        "pseudonymize",
        tables=done.tables,
        files_vacuumed=done.files_vacuumed,
        archive_files=done.archive_files,
        sheets=done.sheets,
        removed=done.removed,
    )
    return done


def _archive(config: SiteConfig, *, keyed: bool = True) -> Archive:
    """The site's archive, wherever retention puts it (``keyed``: able to open sealed files)."""
    from client.retention.retain import archive_dir, site_archive  # retain migrates first

    return site_archive(config) if keyed else Archive(archive_dir(config))


def _key_columns(store: SiteStore, path: Path, column: str | None) -> pl.DataFrame:
    """The id and row id columns (those it has) of a table's latest version."""
    latest = store.latest(path.name)  # a damaged table: its one-line StoreError
    assert latest is not None
    names = pl.scan_delta(str(path)).collect_schema().names()
    wanted = [c for c in (column, ROW_ID) if c is not None and c in names]
    return store.read_columns(path.name, wanted, latest.version) if wanted else pl.DataFrame()


def _holds_pseudonyms(frame: pl.DataFrame, column: str | None) -> bool:
    """Whether ``frame``'s ids are pseudonyms already (64 hex digits each)."""
    if column is None or column not in frame.columns or frame.get_column(column).dtype != pl.String:
        return False
    ids = frame.get_column(column).drop_nulls()
    return ids.len() > 0 and bool(ids.str.contains(_PSEUDONYM.pattern).all())


_NEW = "__pseudonymized"


def _row_id_mapping(
    frames: dict[str, pl.DataFrame], column: str | None, key: bytes
) -> pl.DataFrame:
    """Each clear row id built from an id (``_row_id``) and its pseudonymized form,
    from the tables that hold both; row ids from file positions are absent."""
    empty = pl.DataFrame(schema={ROW_ID: pl.String, _NEW: pl.String})
    if column is None:
        return empty
    pairs = [
        frame.select(pl.col(column).cast(pl.String).alias("id"), ROW_ID)
        for name, frame in frames.items()
        if name in _WITH_IDS
        and column in frame.columns
        and ROW_ID in frame.columns
        and not _holds_pseudonyms(frame, column)
    ]
    if not pairs:
        return empty
    both = pl.concat(pairs).drop_nulls().unique(subset=ROW_ID)
    text, row_id = pl.col("id"), pl.col(ROW_ID)
    built = both.filter((row_id == text) | row_id.str.starts_with(text + "#"))
    hashed = pseudonyms(built.get_column("id"), key)
    suffix = built.get_column(ROW_ID).str.slice(built.get_column("id").str.len_chars())
    return pl.DataFrame({ROW_ID: built.get_column(ROW_ID), _NEW: hashed + suffix})


def _pseudonymized(
    frame: pl.DataFrame,
    column: str | None,
    personal: list[str],
    mapping: pl.DataFrame,
    key: bytes,
) -> pl.DataFrame:
    """``frame`` with ids and row ids as pseudonyms and no ``pii`` column."""
    if ROW_ID in frame.columns and frame.height and column is not None:
        joined = frame.join(mapping, on=ROW_ID, how="left", maintain_order="left")
        # Row ids no table's id explains (labels of rows gone since): by their form.
        unmapped = joined.filter(pl.col(_NEW).is_null()).get_column(ROW_ID).drop_nulls()
        more = {
            v: row_id_pseudonym(key, v)
            for v in unmapped.unique().to_list()
            if v and not _POSITION.match(v) and not _PSEUDONYM.match(v)
        }
        kept = pl.col(ROW_ID).replace(more) if more else pl.col(ROW_ID)
        frame = joined.with_columns(pl.coalesce(_NEW, kept).alias(ROW_ID)).drop(_NEW)
    if column is not None and column in frame.columns:
        frame = frame.with_columns(pseudonyms(frame.get_column(column), key))
    return frame.drop(personal, strict=False)


def _mark(config: SiteConfig, done: Migration) -> None:
    record = {
        "scheme": "hmac-sha256",
        "key": str(Path("audit") / "hmac.key"),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "migrated_tables": done.tables,
    }
    try:
        config.store_dir.mkdir(parents=True, exist_ok=True)
        marker(config).write_text(json.dumps(record, indent=1))
    except OSError as error:
        raise StoreError(f"{marker(config)}: cannot write ({error.strerror})") from None
