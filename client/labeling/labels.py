"""The labeled table: every label a person or the label model gave a row, versioned.

Table ``labeled`` holds one row per label given: ``_row_id``, ``label`` (as text),
``source`` (``manual``; ``active``: answering the active-learning queue; ``weak``: the
label model), ``annotator`` and ``labeled_at`` (UTC, ISO 8601). Every labeling action
commits a new version (:func:`commit_labels`) whose lineage names the operation, the
sources, the annotators, the time and the counts; earlier versions stay readable.

The rows a site has are its ``clean`` table (labeled in the raw data) and its
``unlabeled`` table (cleaned rows whose raw label was missing). The label a row
trains with is, in this order:

1. a human label (manual or active): each annotator's latest label for the row, then
   the label most annotators gave (a tie goes to the latest);
2. else its weak label (weak labels are replaced as a whole on every application);
3. else the label the raw data carried.

Rows with none of these stay unlabeled and never reach training.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from client.store import CLEAN, LABELED, ROW_ID, UNLABELED, SiteStore, TableVersion
from common.config import SiteConfig

LABEL, SOURCE, ANNOTATOR, LABELED_AT = "label", "source", "annotator", "labeled_at"
HUMAN_SOURCES = ("manual", "active")
WEAK = "weak"
LABEL_SCHEMA = {
    ROW_ID: pl.String,
    LABEL: pl.String,
    SOURCE: pl.String,
    ANNOTATOR: pl.String,
    LABELED_AT: pl.String,
}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def given_labels(store: SiteStore) -> pl.DataFrame:
    """Every label given so far (the latest version of the labeled table)."""
    if store.latest(LABELED) is None:
        return pl.DataFrame(schema=LABEL_SCHEMA)
    return store.read(LABELED).select(list(LABEL_SCHEMA))


def commit_labels(
    store: SiteStore,
    added: pl.DataFrame,
    operation: str,
    lineage: dict[str, object],
    replace_source: str | None = None,
) -> TableVersion:
    """Record one labeling action as a new version of the labeled table.

    The one place a labeling action is written (the hook for an audit log).

    Parameters
    ----------
    store : the site's store.
    added : the labels given, with the columns of ``LABEL_SCHEMA``.
    operation : what was done (``label-import``, ``label-weak``).
    lineage : more facts for the commit (counts, versions it was based on).
    replace_source : drop the earlier labels of this source first (weak labels are
        recomputed as a whole).
    """
    kept = given_labels(store)
    if replace_source is not None:
        kept = kept.filter(pl.col(SOURCE) != replace_source)
    # polars' cast accepts dtype classes; its annotation of the mapping is narrower.
    added = added.select(list(LABEL_SCHEMA)).cast(LABEL_SCHEMA)  # type: ignore[arg-type]
    facts = {
        "operation": operation,
        "sources": sorted(set(added[SOURCE].to_list())),
        "annotators": sorted(set(added[ANNOTATOR].to_list())),
        "time": now(),
        "labels_added": added.height,
        **lineage,
    }
    return store.write(LABELED, pl.concat([kept, added]), facts)


def effective_labels(given: pl.DataFrame) -> pl.DataFrame:
    """Row id -> the label it trains with from ``given`` (rule 1, then 2), and its source."""
    human = given.filter(pl.col(SOURCE).is_in(HUMAN_SOURCES)).sort(LABELED_AT, maintain_order=True)
    latest_per_annotator = human.unique([ROW_ID, ANNOTATOR], keep="last", maintain_order=True)
    tallied = latest_per_annotator.group_by(ROW_ID, LABEL).agg(
        pl.len().alias("_votes"), pl.col(LABELED_AT).max(), pl.col(SOURCE).last()
    )
    chosen = tallied.sort([ROW_ID, "_votes", LABELED_AT], descending=[False, True, True])
    chosen = chosen.unique(ROW_ID, keep="first", maintain_order=True).select(ROW_ID, LABEL, SOURCE)
    weak = given.filter(pl.col(SOURCE) == WEAK).unique(ROW_ID, keep="last", maintain_order=True)
    weak = weak.join(chosen, on=ROW_ID, how="anti").select(ROW_ID, LABEL, SOURCE)
    return pl.concat([chosen, weak])


def site_rows(store: SiteStore, clean_version: int | None = None) -> pl.DataFrame:
    """Every row the site holds: the clean table's and the unlabeled table's."""
    clean = store.read(CLEAN, clean_version)
    if store.latest(UNLABELED) is None:
        return clean
    return pl.concat([clean, store.read(UNLABELED)], how="diagonal_relaxed")


def labeled_rows(
    store: SiteStore, config: SiteConfig, clean_version: int | None = None, *, sources: bool = False
) -> pl.DataFrame:
    """The rows training uses: every row with a label, by the rules above.

    Parameters
    ----------
    store, config : the site's store and config.
    clean_version : the clean table's version (None: the latest).
    sources : add ``_label_source`` (raw, manual, active or weak).
    """
    given = given_labels(store)
    if given.height == 0 and not sources:
        return store.read(CLEAN, clean_version)  # nothing labeled at the site yet
    label = config.schema.label
    rows = site_rows(store, clean_version)
    effective = effective_labels(given).rename({LABEL: "_given", SOURCE: "_label_source"})
    joined = rows.join(effective, on=ROW_ID, how="left")
    joined = joined.with_columns(
        pl.coalesce(pl.col("_given").cast(rows.schema[label]), pl.col(label)).alias(label),
        pl.col("_label_source").fill_null(pl.when(pl.col(label).is_not_null()).then(pl.lit("raw"))),
    ).filter(pl.col(label).is_not_null())
    return joined.drop("_given", *([] if sources else ["_label_source"]))


def unlabeled_rows(store: SiteStore, config: SiteConfig) -> pl.DataFrame:
    """Rows without any label yet (candidates for weak labels and the queue)."""
    rows = site_rows(store)
    labeled = labeled_rows(store, config).select(ROW_ID)
    return rows.filter(pl.col(config.schema.label).is_null()).join(labeled, on=ROW_ID, how="anti")


def known_classes(store: SiteStore, config: SiteConfig) -> list[str]:
    """The label's classes: declared in the schema, else those the clean rows carry."""
    label = config.schema.label
    declared = config.schema.columns[label].values
    if declared:
        return [str(v) for v in declared]
    seen = store.read(CLEAN).get_column(label).drop_nulls().cast(pl.String).unique()
    return sorted(seen.to_list())
