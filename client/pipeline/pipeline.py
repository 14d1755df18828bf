"""The site pipeline: raw files -> typed rows (and a quarantine) -> clean rows.

Raw files are only read (``client.pipeline.ingest``); ``client.pipeline.validate`` types them and
quarantines rows that break the schema; ``client.pipeline.clean`` dedupes, imputes and tames
outliers. Everything is a polars expression over whole columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import polars as pl

from client.pipeline.clean import (
    CleaningReport,
    clean,
    clean_with_unlabeled,
    missing_fractions,
    numeric_features,
)
from client.pipeline.ingest import LINE, SOURCE, raw_files, read_raw
from client.pipeline.validate import Validated, validate, validate_files
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


def run(config: SiteConfig) -> PipelineResult:
    """Read, validate and clean; refuse when no row survives validation."""
    reject = config.cleaning.outliers == "reject"
    # Numbers typed as read; the text route where that is not exact.
    validated = validate_files(raw_files(config), config.schema, reject_out_of_range=reject)
    text = {c: pl.String for c in [*config.schema.columns, SOURCE]}
    raw = pl.DataFrame(schema={**text, LINE: pl.Int64})  # nothing writes it
    if validated is None:
        raw = read_raw(config)
        validated = validate(raw, config.schema, reject_out_of_range=reject)
        rows_read = raw.height
        if not config.site.keep_raw_table:
            raw = raw.clear()  # free the text before cleaning (peak memory)
    else:
        rows_read = validated.valid.height + validated.quarantine.height
        if config.site.keep_raw_table:
            raw = read_raw(config)  # the raw table's text
    if validated.valid.height == 0:
        reasons = ", ".join(f"{r} ({n})" for r, n in sorted(validated.rejected.items()))
        raise DataError(f"{config.raw_location}: all {rows_read} rows rejected: {reasons}")
    missing = missing_fractions(validated.valid, numeric_features(config.schema))
    # The unlabeled rows are cleaned alongside all rows (awaiting labels), the clean
    # table from the labeled ones only, so it stays exactly what it was without them.
    # The typed rows go on in the clean and unlabeled tables; nothing writes them
    # again: cleaning frees them once deduped (peak memory).
    emptied = validated.valid.clear()
    cleaned, report, unlabeled = clean_with_unlabeled(validated.valid, config, consume=True)
    validated = replace(validated, valid=emptied)
    report.rows_read, report.rejected = rows_read, validated.rejected
    return PipelineResult(raw, validated, cleaned, unlabeled, report, missing)


def feature_columns(config: SiteConfig) -> list[str]:
    """Columns that may become model inputs: role feature, never id or pii."""
    return numeric_features(config.schema)
