"""``label import``: merge a file of (row id, label[, annotator]) into the labeled table.

The file is a CSV or Parquet with a ``row_id`` column (the ids ``label queue`` writes,
see ``client.pipeline.clean`` for how ids are made), a ``label`` column (or one named like the
schema's label) and optionally ``annotator``. Blank labels are unanswered rows and
are skipped. Labels for unknown ids, labels that are not a class, and ids one
annotator gave different labels in the same file are reported and not applied; the
rest is applied as one new version. A label for a row in the current queue counts as
``active``, any other as ``manual``.

Row ids built from the schema's id column are stored as pseudonyms
(``client.privacy.pseudonyms``): a file may name rows by the stored ids (those the
queue sheets show) or by the subjects' ids as the site knows them (``P17``, ``P17#2``),
which are pseudonymized here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from client.labeling.labels import (
    ANNOTATOR,
    LABEL,
    LABELED_AT,
    SOURCE,
    commit_labels,
    known_classes,
    now,
    site_rows,
)
from client.privacy.pseudonyms import id_column, row_id_pseudonym, site_key
from client.retention.pseudonymize import ensure_pseudonymized
from client.sealed_files import is_sealed, plain_path, read_file
from client.site_audit import site_audit
from client.store import QUEUE, ROW_ID, SiteStore, TableVersion
from common.config import SiteConfig
from common.errors import DataError

FILE_ID = "row_id"
DEFAULT_ANNOTATOR = "operator"


@dataclass
class ImportReport:
    """What an import applied and what it refused (ids only; they stay at the site)."""

    applied: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0
    duplicates: int = 0
    unknown_ids: list[str] = field(default_factory=list)
    unknown_classes: dict[str, int] = field(default_factory=dict)
    conflicting_ids: list[str] = field(default_factory=list)
    version: TableVersion | None = None

    @property
    def refused(self) -> int:
        return (
            len(self.unknown_ids) + sum(self.unknown_classes.values()) + len(self.conflicting_ids)
        )


def read_labels_file(path: Path, label_name: str, store_dir: Path | None = None) -> pl.DataFrame:
    """The file's row ids, labels and annotators, all as text (annotator may be null).

    ``store_dir`` : the site's store, whose key opens a sealed file (a queue sheet as
        fedlife wrote it); the filled-in sheet an annotator gives back is a plain file.
    """
    try:
        source: Path | io.BytesIO = path
        if store_dir is not None and path.is_file() and is_sealed(path):
            source = io.BytesIO(read_file(store_dir, path))
        if plain_path(path).suffix.lower() == ".parquet":
            frame = pl.read_parquet(source)
        else:
            frame = pl.read_csv(source, infer_schema=False)
    except FileNotFoundError:
        raise DataError(f"{path}: labels file not found") from None
    except pl.exceptions.NoDataError:
        raise DataError(f"{path}: labels file is empty") from None
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: cannot read labels ({first})") from None
    if FILE_ID not in frame.columns:
        raise DataError(f"{path}: no '{FILE_ID}' column (columns: {frame.columns})")
    label = next((c for c in (LABEL, label_name) if c in frame.columns), None)
    if label is None:
        raise DataError(f"{path}: no '{LABEL}' or '{label_name}' column (columns: {frame.columns})")
    if frame.height == 0:
        raise DataError(f"{path}: labels file has no rows")
    annotator = pl.col(ANNOTATOR) if ANNOTATOR in frame.columns else pl.lit(None)
    return frame.select(
        pl.col(FILE_ID).cast(pl.String).str.strip_chars().alias(ROW_ID),
        pl.col(label).cast(pl.String).str.strip_chars().replace("", None).alias(LABEL),
        annotator.cast(pl.String).str.strip_chars().replace("", None).alias(ANNOTATOR),
    )


def import_labels(
    store: SiteStore, config: SiteConfig, path: Path, annotator: str | None = None
) -> ImportReport:
    """Apply the valid labels of ``path`` as one new version of the labeled table.

    The one labeling action of manual and active labels.

    Parameters
    ----------
    store, config : the site's store and config.
    path : the labels file (CSV or Parquet).
    annotator : who labeled, for rows whose file names none (default ``operator``).
    """
    frame = read_labels_file(Path(path), config.schema.label, config.store_dir)
    ensure_pseudonymized(config)  # row ids are matched against pseudonyms
    report = ImportReport()
    answered = frame.filter(pl.col(LABEL).is_not_null() & pl.col(ROW_ID).is_not_null())
    report.unanswered = frame.height - answered.height
    answered = answered.with_columns(
        pl.col(ANNOTATOR).fill_null(annotator or DEFAULT_ANNOTATOR)
    ).unique(maintain_order=True)
    report.duplicates = frame.height - report.unanswered - answered.height

    known_ids = site_rows(store).select(ROW_ID)
    answered = _stored_ids(answered, known_ids, config)
    unknown = answered.join(known_ids, on=ROW_ID, how="anti")
    report.unknown_ids = sorted(set(unknown[_TYPED].to_list()))
    classes = known_classes(store, config)
    off_class = answered.filter(~pl.col(LABEL).is_in(classes))
    report.unknown_classes = dict(off_class.group_by(LABEL).len().iter_rows())
    differing = answered.group_by(ROW_ID, ANNOTATOR).agg(pl.col(LABEL).n_unique().alias("_n"))
    conflicting = differing.filter(pl.col("_n") > 1).select(ROW_ID, ANNOTATOR)
    report.conflicting_ids = sorted(
        set(answered.join(conflicting, on=[ROW_ID, ANNOTATOR])[_TYPED].to_list())
    )

    valid = (
        answered.join(known_ids, on=ROW_ID, how="semi")
        .filter(pl.col(LABEL).is_in(classes))
        .join(conflicting, on=[ROW_ID, ANNOTATOR], how="anti")
        .drop(_TYPED)
    )
    if valid.height == 0:
        raise DataError(f"{path}: no label could be applied ({_refusals(report)})")
    queued = _queued_ids(store)
    added = valid.with_columns(
        pl.when(pl.col(ROW_ID).is_in(queued))
        .then(pl.lit("active"))
        .otherwise(pl.lit("manual"))
        .alias(SOURCE),
        pl.lit(now()).alias(LABELED_AT),
    )
    report.applied = dict(sorted(added.group_by(SOURCE).len().iter_rows()))
    report.version = commit_labels(
        store,
        added,
        "label-import",
        {
            "file": str(Path(path).resolve()),
            "unknown_ids": len(report.unknown_ids),
            "unknown_classes": sum(report.unknown_classes.values()),
            "conflicting_ids": len(report.conflicting_ids),
            "unanswered": report.unanswered,
        },
    )
    site_audit(config).append(
        "label-import", table_version=report.version.version, labels_applied=report.applied
    )
    return report


_TYPED = "_typed"


def _stored_ids(answered: pl.DataFrame, known: pl.DataFrame, config: SiteConfig) -> pl.DataFrame:
    """``answered`` with each row id as stored (``_typed``: as the file wrote it).

    An id the store knows is kept; any other is taken for a clear id (or ``id#n``)
    and pseudonymized, where the schema has an id column.
    """
    answered = answered.with_columns(pl.col(ROW_ID).alias(_TYPED))
    if id_column(config.schema) is None:
        return answered
    stored = set(known.get_column(ROW_ID).to_list())
    clear = [v for v in answered.get_column(ROW_ID).unique().to_list() if v not in stored]
    if not clear:
        return answered
    key = site_key(config.store_dir)
    mapping = {v: row_id_pseudonym(key, v) for v in clear}
    return answered.with_columns(pl.col(ROW_ID).replace(mapping))


def _queued_ids(store: SiteStore) -> list[str]:
    if store.latest(QUEUE) is None:
        return []
    return store.read(QUEUE)[ROW_ID].to_list()


def _refusals(report: ImportReport) -> str:
    parts = [
        f"{len(report.unknown_ids)} unknown id(s)",
        f"{sum(report.unknown_classes.values())} label(s) not a class",
        f"{len(report.conflicting_ids)} conflicting id(s)",
        f"{report.unanswered} blank",
    ]
    return ", ".join(parts)
