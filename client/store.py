"""The site store: each pipeline stage is a versioned Delta Lake table.

Every version is one Delta commit whose metadata records the operation, the parent
version, the config hash, the input files' sha256 and the row count: the lineage
that models are tied to. Delta commits are atomic, so a crash mid-write leaves the
previous version as the latest readable one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from deltalake import ColumnProperties, CommitProperties, DeltaTable, WriterProperties
from deltalake.exceptions import DeltaError, TableNotFoundError

from common.errors import StoreError

# The store's tables, one per pipeline stage, and the column that names a row in all.
RAW, QUARANTINE, CLEAN = "raw", "quarantine", "clean"
UNLABELED, LABELED, QUEUE = "unlabeled", "labeled", "queue"
TABLES = (RAW, QUARANTINE, CLEAN, UNLABELED, LABELED, QUEUE)
ROW_ID = "_row_id"

_PREFIX = "fedlife."
_ARCHIVE = WriterProperties(
    compression="ZSTD",
    compression_level=1,
    default_column_properties=ColumnProperties(statistics_enabled="NONE"),
)


@dataclass(frozen=True)
class TableVersion:
    """One committed version of a table and its lineage."""

    table: str
    version: int
    lineage: dict[str, str]


class SiteStore:
    """Delta tables (raw, clean, ...) under ``<store>/tables``.

    Parameters
    ----------
    root : Path
        The site's store directory; created on first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def table_path(self, table: str) -> Path:
        return self.root / "tables" / table

    def latest(self, table: str) -> TableVersion | None:
        """The newest version of ``table`` with its lineage, or None if absent."""
        path = self.table_path(table)
        try:
            delta = DeltaTable(path)
        except TableNotFoundError:
            return None
        except DeltaError as error:
            if not path.exists():
                return None
            first_line = str(error).strip().splitlines()[0]
            raise StoreError(f"{path}: table '{table}' cannot be read ({first_line})") from None
        entry = delta.history(1)[0]
        lineage = {k.removeprefix(_PREFIX): v for k, v in entry.items() if k.startswith(_PREFIX)}
        return TableVersion(table, delta.version(), lineage)

    def read(self, table: str, version: int | None = None) -> pl.DataFrame:
        if self.latest(table) is None:
            raise StoreError(f"{self.table_path(table)}: table '{table}' does not exist yet")
        return pl.read_delta(str(self.table_path(table)), version=version)

    def write(
        self, table: str, frame: pl.DataFrame, lineage: dict[str, object], archive: bool = False
    ) -> TableVersion:
        """Commit ``frame`` as the next version of ``table``, recording its lineage.

        ``archive`` tables (raw text, quarantine) are kept, not queried: they are
        written compactly (zstd) without column statistics, which is much faster.
        """
        parent = self.latest(table)
        metadata = {
            "parent_version": "" if parent is None else str(parent.version),
            "rows": str(frame.height),
            **{k: v if isinstance(v, str) else json.dumps(v) for k, v in lineage.items()},
        }
        try:
            self.table_path(table).parent.mkdir(parents=True, exist_ok=True)
            frame.write_delta(
                str(self.table_path(table)),
                mode="overwrite",
                delta_write_options={
                    "commit_properties": CommitProperties(
                        custom_metadata={_PREFIX + k: v for k, v in metadata.items()}
                    ),
                    "schema_mode": "overwrite",
                    **({"writer_properties": _ARCHIVE} if archive else {}),
                },
            )
        except OSError as error:
            raise StoreError(f"{self.root}: cannot write the store ({error.strerror})") from None
        written = self.latest(table)
        assert written is not None
        return written


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
