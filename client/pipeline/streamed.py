"""Out-of-core ``prepare``: a site whose raw data is larger than memory, in bounded memory.

The in-memory route (``client.pipeline.pipeline.run``) holds every typed row at once
(about 0.6 GiB per million rows of 20 columns). This one holds a few columns at a time:

1. one streaming plan reads the CSVs typed (``scan_typed``), blanks the missing
   markers and gives each row its reasons (``validate``'s expressions); it is sunk to
   a Parquet stage beside the store, each row numbered in reading order;
2. exact dedupe: only rows whose id (or first int column) repeats or is missing can be
   repeats, so those keys are found from that one column and only their rows are
   compared whole; their row ids (``id#2``, ``<file>:<line>``) are made among them;
3. exact statistics (medians, means) a few columns at a time, counts in one pass;
4. one streaming plan per table cleans the stage's rows into Delta: one commit each.

The tables, lineage and report are the in-memory route's (tests compare the two).
Where this route is not exact (see ``supported``; a value the CSV reader cannot type;
a file without rows) the in-memory route runs instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from client.pipeline.clean import (
    CleaningReport,
    _bounds,
    _missing_indicators,
    _outside,
    finishing,
    imputed_counts,
    numeric_features,
)
from client.pipeline.dedupe import repeated, with_row_ids
from client.pipeline.ingest import LINE, SOURCE, scan_text, scan_typed
from client.pipeline.medians import medians
from client.pipeline.validate import (
    REASON,
    Validated,
    checked_plan,
    finished,
    quarantined_text,
    rejected_counts,
    typed_as_read,
)
from client.privacy.pseudonyms import id_column, pseudonymize_frame, site_key
from client.store import ROW_ID
from common.config import ColumnType, Role, SiteConfig
from common.errors import DataError

# Raw files above this size take this route (where it is exact): the in-memory one
# needs about 4.5 bytes of memory per byte of CSV.
OUT_OF_CORE_BYTES = 512 << 20
POSITION = "__position"
_SPECIAL = "__row_id"
STAGE = "checked.parquet"
# Values per statistics read (1 GiB of float64s): 17 features of 5M rows in one.
CELLS_PER_QUERY = 1 << 27
_IMPUTE = {"median", "mean", "constant", "center", "drop"}
_KEPT = "__kept"


@dataclass
class Streamed:
    """One out-of-core run's results: counts in memory, the cleaned rows as plans.

    ``clean`` and ``unlabeled`` read the stage: write them before it is removed.
    """

    raw: pl.LazyFrame  # every raw value as text (``ingest.read_text``), for the raw table
    validated: Validated  # the quarantine; ``valid`` is empty (the rows are in the stage)
    clean: pl.LazyFrame
    unlabeled: pl.LazyFrame
    clean_rows: int
    unlabeled_rows: int
    classes: list[str]
    report: CleaningReport
    missing: dict[str, float]
    rows_by_file: dict[str, int]
    rows_valid: int
    null_counts: dict[str, int]


def supported(config: SiteConfig) -> bool:
    """Whether this route gives the in-memory route's tables for ``config``'s settings.

    Not with quality rules (they test every clean row), columns the
    CSV reader does not type (bool, datetime, decimal commas), ``impute`` mode or
    interpolate, ``outliers = "winsorize"``, ``dedupe = "id"``, or whole-row dedupe
    without an id or int column to narrow it.
    """
    schema, cleaning = config.schema, config.cleaning
    typed = typed_as_read(schema)
    plain = all(
        n in typed or s.type in (ColumnType.CATEGORY, ColumnType.TEXT)
        for n, s in schema.columns.items()
    )
    keyed = cleaning.dedupe is False or _dedupe_key(config) is not None
    return (
        not config.quality.rules
        and schema.header
        and plain
        and cleaning.impute in _IMPUTE
        and cleaning.outliers != "winsorize"
        and cleaning.dedupe in (True, False)
        and keyed
    )


def wanted(config: SiteConfig, files: list[Path], *, chosen: bool | None) -> bool:
    """Whether to take this route: as ``chosen`` where ``supported``, else by size."""
    if chosen is False or not supported(config):
        return False
    return chosen or sum(path.stat().st_size for path in files) >= OUT_OF_CORE_BYTES


def run(
    config: SiteConfig,
    files: list[Path],
    work: Path,
    on_step: Callable[[str], None] | None = None,
) -> Streamed | None:
    """Validate and clean ``files`` through a stage under ``work``; None: not exact here.

    Parameters
    ----------
    on_step : told the name of each step as it starts (after the stage is written).
    config : the site's config (``supported``).
    files : the raw files, in reading order.
    work : an empty folder for the stage; it must outlive the writes of the plans.
    """
    schema = config.schema
    scans = [scan for path in files if (scan := scan_typed(path, schema)) is not None]
    if len(scans) < len(files):
        return None
    stage = work / STAGE
    reject = config.cleaning.outliers == "reject"
    plan = checked_plan(
        pl.concat(scans), schema, reject_out_of_range=reject, typed=typed_as_read(schema)
    )
    # Ids become pseudonyms and pii nulls before the stage: neither is written, even there.
    key = site_key(config.store_dir) if id_column(schema) is not None else b""
    plan = pseudonymize_frame(plan.select(*finished(schema), SOURCE, LINE, REASON), schema, key)
    try:
        plan.with_row_index(POSITION).sink_parquet(
            stage, compression="uncompressed", statistics=False, row_group_size=1 << 16
        )
    except pl.exceptions.PolarsError:
        return None  # a value the reader cannot type: the text route quarantines it
    checked = pl.scan_parquet(stage)
    by_file = (
        checked.group_by(SOURCE)
        .agg(pl.len().alias("rows"), pl.col(REASON).is_null().sum().alias("valid"))
        .collect()
    )
    if by_file.height < len(files):
        return None  # a file without rows: the text route names it
    step = on_step or (lambda name: None)
    step("reading the quarantined rows")
    rows_read, rows_valid = int(by_file["rows"].sum()), int(by_file["valid"].sum())
    bad = checked.filter(pl.col(REASON).is_not_null()).select(SOURCE, LINE, REASON).collect()
    quarantine = pseudonymize_frame(quarantined_text(files, schema, bad), schema, key)
    rejected = rejected_counts(quarantine.get_column(REASON))
    if rows_valid == 0:
        reasons = ", ".join(f"{r} ({n})" for r, n in sorted(rejected.items()))
        raise DataError(f"{config.raw_location}: all {rows_read} rows rejected: {reasons}")
    valid = checked.filter(pl.col(REASON).is_null()).drop(REASON)
    step("finding duplicates")
    identified, deduped, duplicates, kept = _identified(valid, config)
    step("computing statistics")
    report = CleaningReport(rows_read=rows_read, rows_valid=rows_valid, rejected=rejected)
    report.duplicates_dropped = duplicates
    streamed, missing, nulls = _cleaned(identified, (valid, kept, deduped), config, report)
    return Streamed(
        raw=pseudonymize_frame(pl.concat([scan_text(path, schema) for path in files]), schema, key),
        validated=Validated(pl.DataFrame(), quarantine, rejected),
        missing=missing,
        rows_by_file=dict(zip(by_file[SOURCE], by_file["rows"], strict=True)),
        rows_valid=rows_valid,
        null_counts=nulls,
        **streamed,
    )


def _dedupe_key(config: SiteConfig) -> str | None:
    """The column whose repeats narrow whole-row dedupe (``dedupe.unique_rows``')."""
    schema = config.schema
    ints = [n for n, s in schema.columns.items() if s.type is ColumnType.INT]
    return schema.first_with(Role.ID) or (ints[0] if ints else None)


def _identified(
    valid: pl.LazyFrame, config: SiteConfig
) -> tuple[pl.LazyFrame, pl.LazyFrame, int, pl.Expr]:
    """The deduped rows' plan with their row ids (``clean._identified``), the same
    without row ids, the duplicates dropped, and which valid rows dedupe keeps."""
    schema, cleaning = config.schema, config.cleaning
    id_column = schema.first_with(Role.ID)
    keys = [k for k in {id_column, _dedupe_key(config) if cleaning.dedupe else None} if k]
    position = pl.concat_str(pl.col(SOURCE), pl.lit(":"), pl.col(LINE).cast(pl.String))
    dropped, special = pl.Series(POSITION, [], pl.UInt32), pl.DataFrame()
    if keys:
        # Only rows whose key repeats or is missing can repeat, or need an id beyond
        # their key's text: found from the key columns alone, then compared whole.
        key_rows = valid.select(POSITION, *keys).collect()
        repeats = pl.any_horizontal(
            *(pl.col(k).is_null() | pl.col(k).is_in(repeated(key_rows[k]).implode()) for k in keys)
        )
        positions = key_rows.filter(repeats).get_column(POSITION)
        del key_rows
        candidates = valid.filter(pl.col(POSITION).is_in(positions.implode())).collect()
        kept = candidates
        if cleaning.dedupe:
            content = list(schema.columns)
            kept = candidates.unique(subset=content, keep="first", maintain_order=True)
        dropped = candidates.filter(~pl.col(POSITION).is_in(kept.get_column(POSITION).implode()))[
            POSITION
        ]
        if id_column is not None:
            # Only the row ids other than the id's text (a repeat's '#2', a missing
            # id's position) are joined: often none, and then there is no join.
            value = pl.col(id_column)
            other = value.is_null() | (pl.col(ROW_ID) != value.cast(pl.String))
            special = with_row_ids(kept, schema).filter(other).select(POSITION, ROW_ID)
    undropped = pl.lit(True) if dropped.is_empty() else ~pl.col(POSITION).is_in(dropped.implode())
    rows = valid if dropped.is_empty() else valid.filter(undropped)
    # The statistics' input: no row ids' join (projection pushdown does not drop one).
    deduped = rows.select(*schema.columns)
    if id_column is None:
        row_id = position
    else:
        row_id = pl.col(id_column).cast(pl.String)
        if special.height:
            # A join with the few special rows, not ``replace_strict``: that one holds
            # the whole column (it does not stream).
            named = special.rename({ROW_ID: _SPECIAL}).lazy()
            rows = rows.join(named, on=POSITION, how="left", maintain_order="left")
            row_id = pl.coalesce(pl.col(_SPECIAL), row_id)
    identified = rows.with_columns(row_id.alias(ROW_ID)).select(*schema.columns, ROW_ID)
    return identified, deduped, dropped.len(), undropped


def _cleaned(
    identified: pl.LazyFrame,
    stage: tuple[pl.LazyFrame, pl.Expr, pl.LazyFrame],
    config: SiteConfig,
    report: CleaningReport,
) -> tuple[dict, dict[str, float], dict[str, int]]:
    """The clean and unlabeled plans (``clean.clean_with_unlabeled``), their row counts
    and label classes; each feature's share and count of missing values among the valid
    rows (before dedupe); fills ``report``'s counts.

    ``stage``: the valid rows, which of them dedupe keeps, and the kept rows' plan.
    """
    valid, kept_row, deduped = stage
    schema, cleaning = config.schema, config.cleaning
    features = numeric_features(schema)
    label = pl.col(schema.label)
    labeled = label.is_not_null()
    bounds = _bounds(pl.DataFrame(), schema, cleaning, features)
    clipped = {c: pl.col(c).clip(lo, hi) for c, (lo, hi) in bounds.items()}  # type: ignore[arg-type]  # declared numbers
    complete = pl.all_horizontal(*(pl.col(c).is_not_null() for c in features))
    fills: dict[str, object] | None
    fills_all: dict[str, object] | None
    if cleaning.impute in ("median", "mean") and features:
        # Counts, fill values and label classes from one scan of the stage.
        counts, fills, fills_all, classes = _statistics(
            valid, kept_row, config, bounds, rows=report.rows_valid
        )
    else:
        # One scan for every count, one for the label classes.
        expressions = _counts(kept_row, label, features, bounds, first=True, complete=True)
        row = valid.select(expressions).collect().row(0, named=True)
        counts = {k: int(v or 0) for k, v in row.items()}
        fills = None if cleaning.impute in ("center", "drop") else {}
        if cleaning.impute == "constant":
            fills = {c: cleaning.impute_value for c in features}
        fills_all = fills
        kept = labeled & complete if cleaning.impute == "drop" else labeled  # the clean rows
        found = deduped.filter(kept).select(label.unique().cast(pl.String)).collect()
        classes = found.get_column(schema.label).to_list()
    nulls, valid_rows = {c: counts[f"valid-null:{c}"] for c in features}, report.rows_valid
    missing = {c: n / valid_rows for c, n in nulls.items()} if valid_rows else {}
    report.unlabeled_dropped = counts["unlabeled"]
    report.clipped = {c: counts[f"clipped:{c}"] for c in bounds if counts.get(f"clipped:{c}")}
    report.imputed = imputed_counts(cleaning, features, fills, counts)
    dtypes = identified.collect_schema()
    indicators = _missing_indicators(schema, features)

    def finish(rows: pl.LazyFrame, values: dict[str, object] | None) -> pl.LazyFrame:
        return finishing(rows, features, indicators, clipped, values, dtypes, drop=cleaning.impute)

    clean_rows, unlabeled_rows = counts["labeled"], counts["unlabeled"]
    if cleaning.impute == "drop":
        report.incomplete_dropped = clean_rows - counts["complete:labeled"]
        clean_rows, unlabeled_rows = counts["complete:labeled"], counts["complete:unlabeled"]
    report.rows_clean = clean_rows
    return (
        {
            "clean": finish(identified.filter(labeled), fills),
            "unlabeled": finish(identified.filter(~labeled), fills_all),
            "clean_rows": clean_rows,
            "unlabeled_rows": unlabeled_rows,
            "classes": sorted(classes),
            "report": report,
        },
        missing,
        nulls,
    )


def _counts(
    kept_row: pl.Expr,
    label: pl.Expr,
    features: list[str],
    bounds: dict[str, tuple[object, object]],
    *,
    first: bool,
    complete: bool,
) -> list[pl.Expr]:
    """The counts ``_cleaned`` reports, of ``features``: ``first`` adds the labeled and
    unlabeled rows, ``complete`` those without a missing feature (``impute = "drop"``).
    Elementwise, then summed: aggregations the streaming engine runs in batches."""
    labeled = label.is_not_null()
    kept, chunk = kept_row & labeled, [c for c in features if c in bounds]
    rows = {"labeled": kept, "unlabeled": kept_row & ~labeled} if first else {}
    if complete:
        present = pl.all_horizontal(*(pl.col(c).is_not_null() for c in features))
        rows |= {
            "complete:labeled": kept & present,
            "complete:unlabeled": kept_row & ~labeled & present,
        }
    return [
        *(condition.sum().alias(name) for name, condition in rows.items()),
        *((_outside(c, *bounds[c]) & kept).sum().alias(f"clipped:{c}") for c in chunk),
        *((pl.col(c).is_null() & kept).sum().alias(f"null:{c}") for c in features),
        *(pl.col(c).is_null().sum().alias(f"valid-null:{c}") for c in features),
    ]


def _statistics(
    valid: pl.LazyFrame,
    kept_row: pl.Expr,
    config: SiteConfig,
    bounds: dict[str, tuple[object, object]],
    *,
    rows: int,
) -> tuple[dict[str, int], dict[str, object], dict[str, object], list[str]]:
    """The counts (``_counts``), each feature's fill value from the kept labeled rows and
    from all kept rows, and the label classes: ``clean._fill_values`` for medians and
    means, from one scan of the stage per ``CELLS_PER_QUERY`` values of the ``rows``
    valid rows (all features of up to 7.9 million rows in one)."""
    schema, cleaning = config.schema, config.cleaning
    features = numeric_features(schema)
    label = pl.col(schema.label)
    clipped = {c: pl.col(c).clip(lo, hi) for c, (lo, hi) in bounds.items()}  # type: ignore[arg-type]  # declared numbers
    kept, labeled = pl.col(_KEPT), pl.col(_KEPT) & label.is_not_null()
    per_query = max(1, CELLS_PER_QUERY // max(rows, 1))
    counts: dict[str, int] = {}
    fills: dict[str, object] = {}
    fills_all: dict[str, object] = {}
    classes: list[str] = []
    for start in range(0, len(features), per_query):
        chunk = features[start : start + per_query]
        values = valid.select(kept_row.alias(_KEPT), label, *chunk).collect()
        first = start == 0
        if first:
            found = values.filter(labeled).select(label.unique().cast(pl.String))
            classes = found.get_column(schema.label).to_list()
        row = values.select(_counts(kept, label, chunk, bounds, first=first, complete=False))
        counts.update({k: int(v or 0) for k, v in row.row(0, named=True).items()})
        some_unlabeled = counts["unlabeled"] > 0
        if cleaning.impute == "mean":
            means = values.select(
                *(clipped.get(c, pl.col(c)).filter(labeled).mean().alias(c) for c in chunk),
                *(clipped.get(c, pl.col(c)).filter(kept).mean().alias(f"all:{c}") for c in chunk),
            ).row(0, named=True)
            fills.update({c: means[c] for c in chunk})
            fills_all.update({c: means[f"all:{c}"] for c in chunk})
        else:
            # Nulls filtered with the rows: one copy of each column fewer.
            wanted = {c: pl.col(c).filter(labeled & pl.col(c).is_not_null()) for c in chunk}
            then = {c: clipped[c] for c in chunk if c in clipped}
            if some_unlabeled:
                present = {c: pl.col(c).filter(kept & pl.col(c).is_not_null()) for c in chunk}
                wanted.update({f"all:{c}": present[c] for c in chunk})
                then.update({f"all:{c}": clipped[c] for c in chunk if c in clipped})
            found_medians = medians(values, wanted, then=then)
            fills.update({c: found_medians[c] for c in chunk})
            fills_all.update({c: found_medians[f"all:{c}"] for c in chunk if some_unlabeled})
        del values  # before the next chunk's are read (peak memory)
    return counts, fills, fills_all if counts["unlabeled"] else fills, classes
