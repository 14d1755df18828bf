"""The site pipeline: raw files -> typed rows (and a quarantine) -> clean rows.

Raw files are only read (``client.pipeline.ingest``); ``client.pipeline.validate`` types them and
quarantines rows that break the schema; ``client.pipeline.clean`` dedupes, imputes and tames
outliers. Everything is a polars expression over whole columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from client.pipeline.clean import (
    CleaningReport,
    clean,
    clean_with_unlabeled,
    missing_fractions,
    numeric_features,
)
from client.pipeline.ingest import LINE, SOURCE, raw_files, read_raw, read_text
from client.pipeline.validate import Validated, validate, validate_files
from client.privacy.pseudonyms import id_column, personal_columns, pseudonymize_frame, site_key
from common.config import SiteConfig
from common.errors import DataError

__all__ = ["CleaningReport", "clean", "feature_columns", "ingest", "raw_files", "run"]


@dataclass(frozen=True)
class PipelineResult:
    """Every stage's output of one pipeline run."""

    raw: pl.DataFrame  # the raw text; empty when the site keeps no raw table
    validated: Validated  # its typed rows emptied: they live on in clean and unlabeled
    clean: pl.DataFrame
    unlabeled: pl.DataFrame
    report: CleaningReport
    missing: dict[str, float]
    # What an incremental prepare adds to: rows read from each file (by name), valid
    # rows and each numeric feature's nulls among them (before imputation hides them).
    rows_by_file: dict[str, int] = field(default_factory=dict)
    rows_valid: int = 0
    null_counts: dict[str, int] = field(default_factory=dict)

    def keep_rows(self, keep: Callable[[pl.DataFrame], pl.DataFrame]) -> PipelineResult:
        """This result with ``keep`` applied to every table it would write."""
        clean = keep(self.clean)
        self.report.rows_clean = clean.height
        typed = self.validated
        validated = replace(typed, valid=keep(typed.valid), quarantine=keep(typed.quarantine))
        return replace(
            self,
            raw=keep(self.raw),
            validated=validated,
            clean=clean,
            unlabeled=keep(self.unlabeled),
        )


def ingest(config: SiteConfig) -> pl.DataFrame:
    """The raw rows that pass validation, typed by the schema."""
    return validate(read_raw(config), config.schema).valid.drop(SOURCE, LINE)


def read_validated(
    config: SiteConfig, files: list[Path], *, text: bool | None = None
) -> tuple[pl.DataFrame, Validated, int]:
    """``files`` read and validated: (raw text, typed rows and quarantine, rows read).

    Parameters
    ----------
    config : the site's config.
    files : the files to read, in reading order.
    text : also return the raw text of every row (default: where the site keeps the
        raw table); otherwise the raw text is empty.
    """
    keep_text = config.site.keep_raw_table if text is None else text
    reject = config.cleaning.outliers == "reject"
    # Numbers typed as read; the text route where that is not exact.
    validated = validate_files(files, config.schema, reject_out_of_range=reject)
    text = {c: pl.String for c in [*config.schema.columns, SOURCE]}
    raw = pl.DataFrame(schema={**text, LINE: pl.Int64})  # nothing writes it
    if validated is None:
        raw = pl.concat([read_text(path, config.schema) for path in files])
        validated = validate(raw, config.schema, reject_out_of_range=reject)
        rows_read = raw.height
        if not keep_text:
            raw = raw.clear()  # free the text before cleaning (peak memory)
    else:
        rows_read = validated.valid.height + validated.quarantine.height
        if keep_text:
            raw = pl.concat([read_text(path, config.schema) for path in files])
    return (*pseudonymized(config, raw, validated), rows_read)


def pseudonymized(
    config: SiteConfig, raw: pl.DataFrame, validated: Validated
) -> tuple[pl.DataFrame, Validated]:
    """The id column of every frame as pseudonyms and ``pii`` columns blanked
    (``client.privacy.pseudonyms``), from here on: dedupe, row ids and every table see
    only pseudonyms, and no step sees a personal value."""
    schema = config.schema
    if id_column(schema) is None and not personal_columns(schema):
        return raw, validated
    key = site_key(config.store_dir) if id_column(schema) is not None else b""
    return pseudonymize_frame(raw, schema, key), replace(
        validated,
        valid=pseudonymize_frame(validated.valid, schema, key),
        quarantine=pseudonymize_frame(validated.quarantine, schema, key),
    )


def rows_by_file(validated: Validated) -> dict[str, int]:
    """Rows read from each file (by name), valid or quarantined."""
    sources = pl.concat([validated.valid.select(SOURCE), validated.quarantine.select(SOURCE)])
    counts = sources.group_by(SOURCE).len()
    return dict(zip(counts.get_column(SOURCE), counts.get_column("len"), strict=True))


def null_counts(frame: pl.DataFrame, columns: list[str]) -> dict[str, int]:
    """Each column's nulls in ``frame``."""
    if not columns:
        return {}
    return {
        c: int(n) for c, n in frame.select(pl.col(columns).null_count()).row(0, named=True).items()
    }


def run(config: SiteConfig) -> PipelineResult:
    """Read, validate and clean; refuse when no row survives validation."""
    raw, validated, rows_read = read_validated(config, raw_files(config))
    if validated.valid.height == 0:
        reasons = ", ".join(f"{r} ({n})" for r, n in sorted(validated.rejected.items()))
        raise DataError(f"{config.raw_location}: all {rows_read} rows rejected: {reasons}")
    features = numeric_features(config.schema)
    missing = missing_fractions(validated.valid, features)
    nulls, rows_valid = null_counts(validated.valid, features), validated.valid.height
    by_file = rows_by_file(validated)
    # The unlabeled rows are cleaned alongside all rows (awaiting labels), the clean
    # table from the labeled ones only, so it stays exactly what it was without them.
    # The typed rows go on in the clean and unlabeled tables; nothing writes them
    # again: cleaning frees them once deduped (peak memory).
    emptied = validated.valid.clear()
    cleaned, report, unlabeled = clean_with_unlabeled(validated.valid, config, consume=True)
    validated = replace(validated, valid=emptied)
    report.rows_read, report.rejected = rows_read, validated.rejected
    return PipelineResult(
        raw, validated, cleaned, unlabeled, report, missing, by_file, rows_valid, nulls
    )


def feature_columns(config: SiteConfig) -> list[str]:
    """Columns that may become model inputs: role feature, never id or pii."""
    return numeric_features(config.schema)
