"""The ``[retention]`` section of site.toml: how long a site keeps its data.

Example::

    [retention]
    max_age_days = 365          # rows older than this are deleted (archived first)
    age_by = "timestamp"        # the schema's timestamp column, or "ingestion"
    archive = true              # archive expired rows before deleting them
    archive_dir = ""            # '' = <store>/archive; relative to site.toml
    archive_max_age_days = 3650 # archive files older than this are deleted
    keep_versions_days = 7      # old table versions stay readable (time travel) this long
    backup_max_age_days = 90    # fedlife-site backup prunes snapshots older than this
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RetentionSection(BaseModel):
    """A site's retention policy.

    Parameters
    ----------
    max_age_days : rows older than this are deleted; None keeps rows forever.
    age_by : what a row's age is measured from: ``"timestamp"``, the schema's column
        with role timestamp; ``"ingestion"``, the time of the Delta commit that wrote
        the table's current rows (every ``prepare`` that changes a table rewrites it).
    archive : write expired rows to zstd Parquet under ``archive_dir`` before deleting.
    archive_dir : the archive folder, relative to site.toml ('' = ``<store>/archive``).
    archive_max_age_days : archive files older than this are deleted; None keeps them.
    keep_versions_days : how long superseded table versions stay readable for time
        travel; older ones are vacuumed (files and commit logs), so deleted rows are
        physically gone.
    backup_max_age_days : snapshots older than this are pruned by the next
        ``fedlife-site backup`` (never the newest); None keeps them. An erased subject
        is gone from every backup this long after the erasure.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_age_days: float | None = Field(default=None, ge=0)
    age_by: Literal["timestamp", "ingestion"] = "timestamp"
    archive: bool = True
    archive_dir: str = ""
    archive_max_age_days: float | None = Field(default=None, ge=0)
    keep_versions_days: float = Field(default=7.0, ge=0)
    backup_max_age_days: float | None = Field(default=90.0, ge=0)
