"""``retain``: apply a site's retention policy and its pending erasure requests.

For every Delta table in the store (found by looking, so new tables are covered):

1. rows past ``max_age_days`` (by the timestamp column, or by ingestion time) are
   archived, then deleted; rows of subjects with a pending erasure request are
   deleted and never archived. Both are one new table version (atomic), whose
   lineage is the previous one's plus what was removed.
2. versions superseded longer than ``keep_versions_days`` ago are vacuumed: their
   data files and their commit logs are deleted. A table that held an erased
   subject in any version keeps only its new version: erasure does not wait.
3. the archive loses the erased subjects' rows and its files past
   ``archive_max_age_days``; updates the site released from erased versions
   (replay caches), profile reports, the raw-file copies (``keep_raw_table =
   false``) and the commits ``repair`` moved aside are deleted.

Everything that can be checked (policy, archive writable) is checked before the
first deletion. :func:`retain_site` is the entry point a Ray task calls.
"""

from __future__ import annotations

import io
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from client.pipeline.pipeline import PipelineResult
from client.privacy.released import ReleasedUpdates
from client.retention import history as delta_history
from client.retention.archive import Archive
from client.retention.erasure import ErasureRequests, PurgedVersions, SubjectMatcher
from client.retention.pseudonymize import ensure_pseudonymized
from client.sealed_files import plain_path, read_file, sheets, write_sealed
from client.sealing_keys import sealing_keys
from client.site_audit import site_audit
from client.store import RAW_FILES, ROW_ID, SiteStore
from client.store_repair import BACKUP_DIR
from common.config import Role, SiteConfig, load_site_config
from common.errors import ConfigError

ARCHIVE_TABLES = ("raw", "quarantine")  # written compactly, without statistics
_REWRITE_KEYS = ("parent_version", "rows")


@dataclass
class TableOutcome:
    """What retention did (or, in a dry run, would do) to one table."""

    table: str
    rows: int = 0
    expired: int = 0
    erased: int = 0
    archived: str = ""
    new_version: int | None = None
    files_vacuumed: int = 0
    versions_dropped: list[int] = field(default_factory=list)
    versions_erased: list[int] = field(default_factory=list)
    note: str = ""


@dataclass
class RetentionReport:
    """Everything one ``retain`` pass did, per table, in the archive and on requests."""

    site: str
    dry_run: bool
    tables: list[TableOutcome] = field(default_factory=list)
    archive_erased: dict[str, int] = field(default_factory=dict)
    sheets_erased: list[str] = field(default_factory=list)
    archive_expired: list[str] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    released_dropped: int = 0
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


ARCHIVE_PURPOSE = "fedlife archive"


def archive_key(config: SiteConfig) -> bytes:
    """The key new archive files are sealed under, drawn from the site's sealing key (HKDF)."""
    return sealing_keys(config.store_dir, ARCHIVE_PURPOSE)[0]


def site_archive(config: SiteConfig) -> Archive:
    """The site's archive, where retention puts it, opening files of every key generation."""
    current, *older = sealing_keys(config.store_dir, ARCHIVE_PURPOSE)
    return Archive(archive_dir(config), key=current, older_keys=older)


def archive_dir(config: SiteConfig) -> Path:
    where = config.retention.archive_dir
    return (config.base_dir / where).resolve() if where else config.store_dir / "archive"


def retain_site(config_path: str | Path, *, dry_run: bool = False) -> dict[str, Any]:
    """Apply the retention policy of the site at ``config_path``; return the report.

    Parameters
    ----------
    config_path : the site's site.toml.
    dry_run : only report what would be removed and archived.
    """
    return retain(load_site_config(config_path), dry_run=dry_run).to_json()


def retain(
    config: SiteConfig, *, dry_run: bool = False, expire: bool = True, now: datetime | None = None
) -> RetentionReport:
    """Apply the policy (``expire``: the age limit too) and every pending erasure request.

    Parameters
    ----------
    config : the site's config.
    dry_run : report only; nothing is written or deleted.
    expire : apply ``max_age_days`` (``erase --now`` carries out only the requests).
    now : the time ages are measured at (default: now).
    """
    started = time.monotonic()
    if not dry_run:
        ensure_pseudonymized(config)  # requests are matched against pseudonyms
    now = now or datetime.now(UTC)
    policy = config.retention
    requests = ErasureRequests(config.store_dir)
    subjects = SubjectMatcher(config, {r.request for r in requests.pending()})
    timestamp = config.schema.first_with(Role.TIMESTAMP)
    ages = expire and policy.max_age_days is not None
    if ages and policy.age_by == "timestamp" and timestamp is None:
        raise ConfigError(
            "retention.age_by = 'timestamp' but no schema column has role 'timestamp'"
        )
    if subjects.digests and subjects.column is None:
        raise ConfigError("erasure needs a schema column with role 'id' to find the rows")
    archive = site_archive(config)
    if not dry_run and ages and policy.archive:
        archive.check_writable()
    if not dry_run and subjects.digests and archive.files():
        archive.check_writable()
    store = SiteStore(config.store_dir)
    purged = PurgedVersions(config.store_dir)
    report = RetentionReport(config.site.name, dry_run)
    cutoff = (
        now - timedelta(days=policy.max_age_days)
        if ages and policy.max_age_days is not None  # `ages` implies it; mypy cannot see that
        else None
    )
    by_column = timestamp if policy.age_by == "timestamp" else None
    expired_to = archive if policy.archive else None
    for path in delta_history.delta_tables(store.root / "tables"):
        outcome = _retain_table(
            store, path.name, cutoff, by_column, subjects, expired_to, dry_run=dry_run
        )
        outcome.versions_dropped, outcome.files_vacuumed = _forget_versions(
            path, outcome, policy.keep_versions_days, dry_run=dry_run
        )
        if outcome.new_version is not None or outcome.files_vacuumed:
            # A vacuum commits twice after the data: report the version status shows.
            latest = None if dry_run else store.latest(path.name)
            outcome.new_version = latest.version if latest else None
        if not dry_run:
            erased = set(outcome.versions_erased)
            purged.add(path.name, sorted(erased), "erasure")
            expired = [v for v in outcome.versions_dropped if v not in erased]
            purged.add(path.name, expired, "retention")
        report.tables.append(outcome)
    report.archive_erased = archive.erase(lambda f: subjects.mask(f, count=True), dry_run=dry_run)
    report.sheets_erased = _erase_from_sheets(
        config.store_dir / "labeling", subjects, dry_run=dry_run
    )
    report.archive_expired = [
        str(p) for p in archive.expire(policy.archive_max_age_days, dry_run=dry_run)
    ]
    report.requests = dict(subjects.rows)
    erased_clean = next((t.versions_erased for t in report.tables if t.table == "clean"), [])
    if not dry_run and subjects.digests:
        report.released_dropped = ReleasedUpdates(config.store_dir).drop_trained_on(erased_clean)
        shutil.rmtree(config.store_dir / "reports", ignore_errors=True)  # profile caches
        # Copies of the raw files (keep_raw_table = false) hold every subject verbatim.
        shutil.rmtree(config.store_dir / RAW_FILES, ignore_errors=True)
        # Commits moved aside by repair: their statistics may hold the subjects' values.
        shutil.rmtree(config.store_dir / BACKUP_DIR, ignore_errors=True)
        requests.complete(subjects.rows)
    report.wall_s = round(time.monotonic() - started, 3)
    _audit(config, report)
    return report


def _retain_table(
    store: SiteStore,
    table: str,
    cutoff: datetime | None,
    timestamp: str | None,
    subjects: SubjectMatcher,
    archive: Archive | None,
    *,
    dry_run: bool,
) -> TableOutcome:
    """Delete (and archive) the expired rows and the requested subjects' rows of ``table``.

    ``timestamp`` None ages rows by ingestion; ``archive`` None deletes unarchived.
    """
    latest = store.latest(table)
    assert latest is not None, f"retain is only called for tables in the store, not {table!r}"
    frame = store.read(table, latest.version)
    outcome = TableOutcome(table, rows=frame.height)
    erased = subjects.mask(frame, count=True)
    if erased is None:
        erased = pl.Series([False] * frame.height, dtype=pl.Boolean)
        if subjects.digests:
            outcome.note = f"no '{subjects.column}' column: erasure cannot find rows here"
    path = store.table_path(table)
    ingested_ms = int(latest.lineage.get("ingested_ms") or _ingested_ms(path))
    expired, why = _expired(frame, ingested_ms, cutoff, timestamp)
    outcome.note = outcome.note or why
    expired = expired & ~erased
    outcome.expired, outcome.erased = int(expired.sum()), int(erased.sum())
    subject_column = subjects.column_in(frame.columns)
    if subjects.digests and subject_column is not None:
        versions = [c.version for c in delta_history.commits(path)]
        outcome.versions_erased = delta_history.versions_holding(
            path, subject_column, subjects.mask, versions
        )
    if dry_run or not (outcome.expired or outcome.erased):
        return outcome
    if outcome.expired and archive is not None:
        outcome.archived = str(archive.write(table, frame.filter(expired)))
    lineage: dict[str, object] = {k: v for k, v in latest.lineage.items() if k not in _REWRITE_KEYS}
    lineage["ingested_ms"] = str(ingested_ms)
    lineage.update(
        operation="erase" if outcome.erased else "retain",
        retention=f'{{"expired": {outcome.expired}, "erased": {outcome.erased}}}',
    )
    kept = frame.filter(~(expired | erased))
    outcome.new_version = store.write(table, kept, lineage, archive=table in ARCHIVE_TABLES).version
    return outcome


def without_expired(
    config: SiteConfig, result: PipelineResult, now: datetime | None = None
) -> PipelineResult:
    """``result`` without the rows its timestamps put past the retention age.

    The raw files are never modified, so a later ``prepare`` would bring back what
    ``retain`` deleted; this keeps expired rows out of every table it writes.
    """
    if expiry_cutoff(config, now) is None:
        return result

    def keep(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(~expired_rows(config, frame, now))

    return result.keep_rows(keep)


def expiry_cutoff(config: SiteConfig, now: datetime | None = None) -> datetime | None:
    """Rows whose timestamp is before this are past the retention age (None: no such age)."""
    policy, timestamp = config.retention, config.schema.first_with(Role.TIMESTAMP)
    if policy.max_age_days is None or policy.age_by != "timestamp" or timestamp is None:
        return None
    return (now or datetime.now(UTC)) - timedelta(days=policy.max_age_days)


def expired_rows(config: SiteConfig, frame: pl.DataFrame, now: datetime | None = None) -> pl.Series:
    """Which of ``frame``'s rows their timestamps put past the retention age."""
    cutoff, timestamp = expiry_cutoff(config, now), config.schema.first_with(Role.TIMESTAMP)
    return _expired(frame, 0, cutoff, timestamp)[0]


def _erase_from_sheets(folder: Path, subjects: SubjectMatcher, *, dry_run: bool) -> list[str]:
    """Drop the requested subjects' rows from the annotators' queue sheets (sealed CSV
    copies of queue versions, keyed by ``row_id``; plain ones from before sealing are
    sealed when rewritten); return the sheets rewritten."""
    rewritten = []
    for sheet in sheets(folder, "queue-v*.csv") if subjects.digests else []:
        content = read_file(folder.parent, sheet)
        rows = pl.read_csv(io.BytesIO(content), infer_schema=False).rename({"row_id": ROW_ID})
        mask = subjects.mask(rows)
        if mask is None or not mask.any():
            continue
        rewritten.append(str(sheet))
        if not dry_run:
            kept = rows.filter(~mask).rename({ROW_ID: "row_id"}).write_csv()
            write_sealed(folder.parent, plain_path(sheet), kept.encode("utf-8"))
    return rewritten


def _expired(
    frame: pl.DataFrame, ingested_ms: int, cutoff: datetime | None, timestamp: str | None
) -> tuple[pl.Series, str]:
    """Rows older than ``cutoff`` (none if no cutoff) and a note if age cannot be told."""
    none = pl.Series([False] * frame.height, dtype=pl.Boolean)
    if cutoff is None:
        return none, ""
    if timestamp is None:  # age by ingestion: every row of the version is as old
        old = datetime.fromtimestamp(ingested_ms / 1000, UTC) < cutoff
        return pl.Series([old] * frame.height, dtype=pl.Boolean), ""
    if timestamp not in frame.columns:
        return none, f"no '{timestamp}' column: rows kept"
    stamps = frame.get_column(timestamp)
    if stamps.dtype == pl.Utf8:
        stamps = stamps.str.strip_chars().str.to_datetime(strict=False, time_unit="us")
    elif stamps.dtype == pl.Date:
        stamps = stamps.cast(pl.Datetime("us"))
    if not isinstance(stamps.dtype, pl.Datetime):
        return none, f"'{timestamp}' is not a time: rows kept"
    if stamps.dtype.time_zone:
        stamps = stamps.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    naive_cutoff = cutoff.astimezone(UTC).replace(tzinfo=None)
    return (stamps < naive_cutoff).fill_null(False), ""


def _ingested_ms(path: Path) -> int:
    """When the table's current rows were written: its last commit that is not a vacuum."""
    written = [c for c in delta_history.commits(path) if not c.operation.startswith("VACUUM")]
    return written[-1].time_ms


def _forget_versions(
    path: Path, outcome: TableOutcome, keep_days: float, *, dry_run: bool
) -> tuple[list[int], int]:
    """Vacuum files and truncate logs past the time-travel window (at once after erasure).

    The window is measured from the wall clock, as Delta's vacuum measures it.
    """
    history = delta_history.commits(path)
    now = datetime.now(UTC)
    # A dry run writes no new version; the real run's would supersede the current one.
    rewritten = dry_run and bool(outcome.expired or outcome.erased)
    if outcome.versions_erased:
        keep_hours, keep_from = 0.0, history[-1].version + int(rewritten)
    else:
        keep_hours = keep_days * 24
        cutoff_ms = (now - timedelta(days=keep_days)).timestamp() * 1000
        times = [(c.version, c.time_ms) for c in history]
        if rewritten:  # the real run's new version, committed just before its vacuum
            times.append((history[-1].version + 1, int(now.timestamp() * 1000) - 1))
        # a version is needed while it is the latest, or was superseded inside the window
        keep_from = next(
            (old for (old, _), (_, time_ms) in zip(times, times[1:]) if time_ms >= cutoff_ms),
            times[-1][0],
        )
    vacuumed = len(delta_history.vacuum(path, math.ceil(keep_hours), dry_run=dry_run))
    if rewritten and math.ceil(keep_hours) == 0:
        # No window: the real run vacuums the files its new version just superseded.
        vacuumed += len(delta_history.current_files(path))
    dropped = delta_history.truncate_history(path, keep_from, dry_run=dry_run)
    return dropped, vacuumed


def _audit(config: SiteConfig, report: RetentionReport) -> None:
    log = site_audit(config)
    tables = {
        t.table: {
            "expired": t.expired,
            "erased": t.erased,
            "archived": bool(t.archived),
            "new_version": t.new_version,
            "versions_dropped": t.versions_dropped,
            "files_vacuumed": t.files_vacuumed,
        }
        for t in report.tables
    }
    log.append(
        "retain",
        dry_run=report.dry_run,
        tables=tables,
        archive_files_expired=len(report.archive_expired),
    )
    if report.dry_run:
        return
    for digest, rows in report.requests.items():
        log.append("erase", request=digest, rows=rows, status="done" if rows else "no rows found")
