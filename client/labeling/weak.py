"""Weak supervision at a site: the labeling functions of site.toml and their weak labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from client.labeling.label_model import ABSTAIN, LabelModel, vote_summary
from client.labeling.labels import (
    ANNOTATOR,
    LABEL,
    LABELED_AT,
    SOURCE,
    WEAK,
    commit_labels,
    known_classes,
    labeled_rows,
    now,
    site_rows,
)
from client.site_audit import site_audit
from client.store import ROW_ID, SiteStore, TableVersion
from common.config import SiteConfig
from common.errors import ConfigError, DataError
from common.labeling import LabelingFunction

LABEL_MODEL = "label-model"


def compile_functions(
    config: SiteConfig, classes: list[str], sample: pl.DataFrame | None = None
) -> list[LabelingFunction]:
    """The site's labeling functions, checked against its schema and classes.

    Parameters
    ----------
    config : the site's config (``labeling.functions``).
    classes : the label's classes; a function voting for another is an error.
    sample : typed rows to try each condition on (catches type mismatches).
    """
    functions = config.labeling.functions
    if not functions:
        raise ConfigError("site config declares no [[labeling.functions]]")
    for i, function in enumerate(functions):
        key = f"labeling.functions.{i} ('{function.name}')"
        unknown = [c for c in function.columns if c not in config.schema.columns]
        if unknown:
            raise ConfigError(f"{key}: unknown column(s) {unknown} in '{function.when}'")
        if function.label not in classes:
            raise ConfigError(f"{key}: label '{function.label}' is not one of {classes}")
        if sample is not None:
            try:
                sample.head(0).select(function.expression)
            except pl.exceptions.PolarsError as error:
                first = str(error).strip().splitlines()[0]
                raise ConfigError(
                    f"{key}: '{function.when}' cannot be evaluated ({first})"
                ) from None
    return list(functions)


def votes(frame: pl.DataFrame, functions: list[LabelingFunction], classes: list[str]) -> np.ndarray:
    """Rows x functions: the class index each function votes for, or ABSTAIN."""
    index = {c: i for i, c in enumerate(classes)}
    columns = [
        pl.when(f.expression).then(index[f.label]).otherwise(ABSTAIN).alias(f"_lf{i}")
        for i, f in enumerate(functions)
    ]
    return frame.select(columns).to_numpy().astype(np.int64)


@dataclass(frozen=True)
class WeakLabels:
    """What the label model found and labeled.

    Parameters
    ----------
    functions : per function: name, label, coverage, overlaps, conflicts,
        estimated accuracy and, on rows that already carry a label, measured accuracy.
    labeled : rows that received a weak label (confidence at or above the threshold).
    candidates : rows without a label that the functions were applied to.
    version : the labeled table's new version (None when not applied).
    """

    functions: pl.DataFrame
    labeled: int
    candidates: int
    threshold: float
    version: TableVersion | None = None


def weak_labels(
    store: SiteStore, config: SiteConfig, threshold: float, *, apply: bool
) -> WeakLabels:
    """Fit the label model on every row; with ``apply`` label the unlabeled rows.

    The one labeling action of weak supervision: ``apply`` commits a new version of
    the labeled table whose weak labels replace the earlier ones.

    Parameters
    ----------
    store, config : the site's store and config (``labeling.functions``).
    threshold : the confidence a weak label needs to be applied.
    apply : write the weak labels; otherwise only measure the functions.
    """
    classes = known_classes(store, config)
    rows = site_rows(store)
    functions = compile_functions(config, classes, rows)
    every_vote = votes(rows, functions, classes)
    model = LabelModel(len(classes)).fit(every_vote)
    known = labeled_rows(store, config, sources=True).filter(pl.col("_label_source") != WEAK)
    gold = rows.select(ROW_ID).join(
        known.select(ROW_ID, pl.col(config.schema.label).cast(pl.String).alias("_gold")),
        on=ROW_ID,
        how="left",
    )["_gold"]
    table = _function_table(functions, every_vote, model, gold, classes)
    candidates = gold.is_null().to_numpy()
    predicted, confidence = model.predict(every_vote[candidates], threshold)
    chosen = predicted != ABSTAIN
    result = WeakLabels(table, int(chosen.sum()), int(candidates.sum()), threshold)
    if not apply:
        return result
    if not chosen.any():
        raise DataError(
            f"no unlabeled row reaches confidence {threshold}: nothing applied "
            f"({int(candidates.sum())} unlabeled rows)"
        )
    added = pl.DataFrame(
        {
            ROW_ID: rows[ROW_ID].filter(pl.Series(candidates)).filter(pl.Series(chosen)),
            LABEL: [classes[i] for i in predicted[chosen]],
        }
    ).with_columns(
        pl.lit(WEAK).alias(SOURCE),
        pl.lit(LABEL_MODEL).alias(ANNOTATOR),
        pl.lit(now()).alias(LABELED_AT),
    )
    version = commit_labels(
        store,
        added,
        "label-weak",
        {
            "threshold": threshold,
            "functions": [f.name for f in functions],
            "estimated_accuracy": dict(zip(table["function"], table["estimated_accuracy"])),
            "mean_confidence": float(confidence[chosen].mean()),
        },
        replace_source=WEAK,
    )
    site_audit(config).append("label-weak", table_version=version.version, rows=added.height)
    return WeakLabels(table, result.labeled, result.candidates, threshold, version)


def _function_table(
    functions: list[LabelingFunction],
    every_vote: np.ndarray,
    model: LabelModel,
    gold: pl.Series,
    classes: list[str],
) -> pl.DataFrame:
    """One row per function: its coverage, overlaps, conflicts and accuracies."""
    summary = vote_summary(every_vote)
    index = {c: i for i, c in enumerate(classes)}
    truth = gold.replace_strict(index, default=ABSTAIN, return_dtype=pl.Int64).to_numpy()
    measured = []
    for j in range(len(functions)):
        judged = (every_vote[:, j] != ABSTAIN) & (truth != ABSTAIN)
        hits = (every_vote[judged, j] == truth[judged]).mean() if judged.any() else None
        measured.append(None if hits is None else float(hits))
    return pl.DataFrame(
        {
            "function": [f.name for f in functions],
            "label": [f.label for f in functions],
            "coverage": summary["coverage"],
            "overlaps": summary["overlaps"],
            "conflicts": summary["conflicts"],
            "estimated_accuracy": model.accuracies,
            "measured_accuracy": pl.Series(measured, dtype=pl.Float64),
        }
    )
