"""The history of one Delta table: which versions exist, and forgetting the old ones.

Deleting rows from a Delta table only adds a version: older versions (time travel)
still hold them, in their data files and, as min/max statistics, in the JSON commit
log. Forgetting a version takes both: :func:`vacuum` removes the data files no
version still needs, :func:`truncate_history` checkpoints the first version kept and
removes every commit (and checkpoint) before it, so no earlier state can be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from deltalake import CommitProperties, DeltaTable

_LOG_FILE = re.compile(r"(\d{20})\.(json|checkpoint\.parquet|crc)")
LINEAGE_PREFIX = "fedlife."


@dataclass(frozen=True)
class Commit:
    """One readable version: its number, when it was committed, and what it recorded."""

    version: int
    time_ms: int
    operation: str
    metadata: dict[str, str]


def delta_tables(tables_dir: Path) -> list[Path]:
    """Every Delta table directly under ``tables_dir`` (whatever its name)."""
    if not tables_dir.is_dir():
        return []
    return sorted(p for p in tables_dir.iterdir() if (p / "_delta_log").is_dir())


def commits(path: Path) -> list[Commit]:
    """The versions still in the log, oldest first."""
    found = [
        Commit(
            int(entry["version"]),
            int(entry.get("timestamp", 0)),
            str(entry.get("operation", "")),
            {k: str(v) for k, v in entry.items() if k.startswith(LINEAGE_PREFIX)},
        )
        for entry in DeltaTable(path).history()
    ]
    return sorted(found, key=lambda c: c.version)


def versions_holding(path: Path, column: str, matches, versions: list[int]) -> list[int]:
    """Those of ``versions`` with a row that ``matches`` (a frame -> bool mask) flags.

    Only ``column`` is read from each version.
    """
    holding = []
    for version in versions:
        frame = pl.read_delta(str(path), version=version, columns=[column])
        if frame.height and bool(matches(frame).any()):
            holding.append(version)
    return holding


def current_files(path: Path) -> list[str]:
    """The data files the latest version reads."""
    return [str(p) for p in DeltaTable(path).get_add_actions().column("path").to_pylist()]


def vacuum(path: Path, retention_hours: float, *, dry_run: bool) -> list[str]:
    """Delete data files no version within ``retention_hours`` needs; return their names.

    Vacuum adds two commits of its own; they carry the lineage of the version they
    follow, so the table's latest lineage stays that of its data.
    """
    table = DeltaTable(path)
    hours = int(retention_hours) if retention_hours >= 1 else 0
    candidates = table.vacuum(
        retention_hours=hours, dry_run=True, enforce_retention_duration=False, full=True
    )
    present = [name for name in candidates if (path / name).exists()]
    if dry_run or not present:
        return present
    latest = table.history(1)[0]
    metadata = {k: str(v) for k, v in latest.items() if k.startswith(LINEAGE_PREFIX)}
    table.vacuum(
        retention_hours=hours,
        dry_run=False,
        enforce_retention_duration=False,
        full=True,
        commit_properties=CommitProperties(custom_metadata=metadata),
    )
    return present


def truncate_history(path: Path, keep_from: int, *, dry_run: bool = False) -> list[int]:
    """Make ``keep_from`` the oldest readable version; return the versions removed.

    A checkpoint of ``keep_from`` is written first, so the log stays readable from
    there on; then every commit, checkpoint and checksum file before it is deleted.
    """
    log = path / "_delta_log"
    logged = {int(m.group(1)) for f in log.iterdir() if (m := _LOG_FILE.fullmatch(f.name))}
    older = sorted(v for v in logged if v < keep_from)
    if dry_run or not older:
        return older
    DeltaTable(path, version=keep_from).create_checkpoint()
    for file in log.iterdir():
        match = _LOG_FILE.fullmatch(file.name)
        if match and int(match.group(1)) < keep_from:
            file.unlink()
    return older
