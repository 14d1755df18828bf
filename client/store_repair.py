"""A table whose newest commits cannot be read, and rolling it back to its last readable one.

A Delta commit is one JSON file under ``_delta_log``; a disk filling up or a copy cut
short can leave the newest one truncated. deltalake then refuses the whole table,
although every earlier version still reads. Delta's own ``restore`` needs the latest
version loaded, so it cannot help here: :func:`repair_table` moves the unreadable
commit files (and checkpoints or checksums of those versions) to a backup folder,
which makes the last readable version the latest again. No data file is deleted: the
earlier versions need theirs, and the files the broken commits added are only no
longer referenced (the next ``retain`` vacuums them).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from client.store import SiteStore
from common.errors import StoreError

_LOG_FILE = re.compile(r"(\d{20})\.(json|checkpoint\.parquet|crc)")
_LAST_CHECKPOINT = "_last_checkpoint"
BACKUP_DIR = "repair-backup"
_ROWS = "fedlife.rows"  # the row count SiteStore records in each commit


@dataclass(frozen=True)
class TableDamage:
    """A table whose latest commit cannot be read.

    Parameters
    ----------
    table : the table's name.
    path : the table's folder.
    latest_logged : the newest version the log has a file for.
    last_readable : the newest version that still reads (None: none does).
    reason : deltalake's first line about the latest version.
    readable_rows : the rows the last readable version's lineage records (None: unknown).
    """

    table: str
    path: Path
    latest_logged: int
    last_readable: int | None
    reason: str
    readable_rows: int | None = None

    def describe(self) -> str:
        """One line for the site's operator."""
        readable = (
            "no version is readable"
            if self.last_readable is None
            else f"last readable version {self.last_readable}"
        )
        latest = f"version {self.latest_logged} unreadable ({self.reason})"
        return f"table '{self.table}': {latest}; {readable}"


@dataclass
class RepairOutcome:
    """What :func:`repair_table` did to one table."""

    table: str
    rolled_back_to: int
    removed_versions: list[int] = field(default_factory=list)
    backup: str = ""


def _logged_versions(log: Path) -> list[int]:
    return sorted({int(m.group(1)) for f in log.iterdir() if (m := _LOG_FILE.fullmatch(f.name))})


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def table_damage(store: SiteStore, table: str) -> TableDamage | None:
    """How ``table`` is damaged, or None when it reads (or does not exist)."""
    path = store.table_path(table)
    log = path / "_delta_log"
    if not log.is_dir():
        return None
    try:
        DeltaTable(path)
        return None
    except TableNotFoundError:
        return None
    except DeltaError as error:
        reason = _first_line(error)
    versions = _logged_versions(log)
    if not versions:
        return None
    for version in reversed(versions[:-1]):
        try:
            DeltaTable(path, version=version)
        except DeltaError:
            continue
        rows = _recorded_rows(log / f"{version:020d}.json")
        return TableDamage(table, path, versions[-1], version, reason, rows)
    return TableDamage(table, path, versions[-1], None, reason)


def _recorded_rows(commit: Path) -> int | None:
    """The row count in a commit file's commitInfo, read from the file itself:
    deltalake's history of an older version reads the newest commits, broken ones too."""
    try:
        for line in commit.read_text(encoding="utf-8").splitlines():
            info = json.loads(line).get("commitInfo")
            if info is not None:
                return int(info[_ROWS])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def damaged_tables(store: SiteStore, tables: tuple[str, ...]) -> list[TableDamage]:
    """Every one of ``tables`` whose latest commit cannot be read."""
    found = (table_damage(store, table) for table in tables)
    return [damage for damage in found if damage is not None]


def repair_table(damage: TableDamage, backup_root: Path) -> RepairOutcome:
    """Make ``damage.last_readable`` the latest version; move what follows to a backup.

    Parameters
    ----------
    damage : from :func:`table_damage`.
    backup_root : the moved log files go to ``<backup_root>/<table>/_delta_log``.
    """
    if damage.last_readable is None:
        raise StoreError(
            f"{damage.path}: no version of table '{damage.table}' is readable: nothing to roll "
            "back to (restore the store from a backup)"
        )
    keep = damage.last_readable
    log = damage.path / "_delta_log"
    target = backup_root / damage.table / "_delta_log"
    moved: set[int] = set()
    try:
        target.mkdir(parents=True, exist_ok=True)
        for file in sorted(log.iterdir()):
            match = _LOG_FILE.fullmatch(file.name)
            if match and int(match.group(1)) > keep:
                shutil.move(file, target / file.name)
                moved.add(int(match.group(1)))
        last = log / _LAST_CHECKPOINT
        if last.exists() and _checkpoint_version(last) > keep:
            shutil.move(last, target / last.name)  # deltalake lists the log without it
    except OSError as error:
        raise StoreError(f"{log}: cannot move the unreadable commits ({error.strerror})") from None
    try:
        version = DeltaTable(damage.path).version()
    except DeltaError as error:
        raise StoreError(
            f"{damage.path}: still unreadable after rolling back to version {keep} "
            f"({_first_line(error)}); the moved commits are in {target}"
        ) from None
    return RepairOutcome(damage.table, version, sorted(moved), str(target))


def _checkpoint_version(path: Path) -> int:
    try:
        return int(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1 << 62  # unreadable: it cannot be trusted to name a kept version


def backup_folder(store_root: Path) -> Path:
    """A new folder under ``<store>/repair-backup`` named by the time (UTC)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return Path(store_root) / BACKUP_DIR / stamp
