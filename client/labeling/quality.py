"""Label quality at a site: likely label errors, class balance, annotator agreement.

Likely errors come from confident learning (cleanlab): every labeled row gets
out-of-sample class probabilities from a cross-validated logistic regression on the
site's encoded features, and cleanlab flags the rows whose given label the model
confidently contradicts. Suspected rows are listed, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, cast

import numpy as np
import polars as pl
from cleanlab.filter import find_label_issues
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from client.labeling.labels import ANNOTATOR, HUMAN_SOURCES, LABEL, LABELED_AT, SOURCE
from client.store import ROW_ID
from common.errors import DataError
from common.features import FeatureSpec


@dataclass(frozen=True)
class LabelQuality:
    """What ``label quality`` found.

    Parameters
    ----------
    suspects : row id, given label, likeliest other label, the given label's
        out-of-sample probability; most suspicious first.
    balance : per class and label source, how many rows.
    agreement : pairwise Cohen's kappa of annotators on the rows both labeled, and
        Fleiss' kappa over rows with two or more annotators (None when none).
    rows : labeled rows examined.
    """

    suspects: pl.DataFrame
    balance: pl.DataFrame
    agreement: dict[str, Any]
    rows: int


def out_of_sample_probabilities(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Class probabilities each row gets from a model that never saw it."""
    smallest = int(np.bincount(y).min())
    folds = min(folds, smallest)
    if folds < 2:
        raise DataError(f"label quality needs at least 2 labeled rows per class, found {smallest}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = LogisticRegression(max_iter=1000)
    return cross_val_predict(model, x, y, cv=splitter, method="predict_proba")


def label_quality(
    labeled: pl.DataFrame, spec: FeatureSpec, given: pl.DataFrame, folds: int = 5, seed: int = 0
) -> LabelQuality:
    """Examine the labeled rows (with ``_label_source``) and the labels given by people.

    Parameters
    ----------
    labeled : the site's labeled rows, as ``client.labeling.labels.labeled_rows(sources=True)``.
    spec : the site's feature contract (encodes the rows).
    given : the labeled table (every label given, for annotator agreement).
    folds : cross-validation folds for the out-of-sample probabilities.
    seed : fold assignment.
    """
    present = sorted(set(labeled.get_column(spec.label).cast(pl.String).to_list()))
    spec = FeatureSpec(spec.features, spec.lows, spec.highs, spec.label, present, spec.scales)
    if len(present) < 2:
        raise DataError(f"label quality needs two classes among the labeled rows, found {present}")
    x, y = spec.encode(labeled)
    probabilities = out_of_sample_probabilities(x, y, folds, seed)
    ranked = find_label_issues(
        labels=y, pred_probs=probabilities, return_indices_ranked_by="self_confidence"
    )
    classes = np.array(spec.classes)
    others = probabilities.copy()
    others[np.arange(len(y)), y] = -1
    suspects = pl.DataFrame(
        {
            ROW_ID: labeled[ROW_ID].gather(ranked),
            "given": classes[y[ranked]],
            "likelier": classes[others[ranked].argmax(axis=1)],
            "given_probability": probabilities[ranked, y[ranked]],
            "source": labeled["_label_source"].gather(ranked),
        },
        schema_overrides={ROW_ID: pl.String, "given": pl.String, "likelier": pl.String},
    )
    balance = (
        labeled.group_by(pl.col(spec.label).cast(pl.String).alias("class"), "_label_source")
        .len()
        .rename({"_label_source": "source", "len": "rows"})
        .sort("class", "source")
    )
    return LabelQuality(suspects, balance, annotator_agreement(given), labeled.height)


def annotator_agreement(given: pl.DataFrame) -> dict[str, Any]:
    """Cohen's kappa per annotator pair and Fleiss' kappa, on rows several people labeled."""
    human = given.filter(pl.col(SOURCE).is_in(HUMAN_SOURCES)).sort(LABELED_AT, maintain_order=True)
    latest = human.unique([ROW_ID, ANNOTATOR], keep="last", maintain_order=True)
    wide = latest.pivot(on=ANNOTATOR, index=ROW_ID, values=LABEL)
    annotators = [c for c in wide.columns if c != ROW_ID]
    pairs = {}
    for a, b in combinations(sorted(annotators), 2):
        both = wide.select(a, b).drop_nulls()
        if both.height >= 2:
            kappa = cohen_kappa_score(both[a].to_list(), both[b].to_list())
            pairs[f"{a} vs {b}"] = {"rows": both.height, "kappa": _finite(kappa)}
    return {"annotators": len(annotators), "cohen": pairs, "fleiss": fleiss_kappa(latest)}


def fleiss_kappa(latest: pl.DataFrame) -> dict[str, object] | None:
    """Fleiss' kappa over rows labeled by 2+ annotators (raters may differ per row)."""
    counts = latest.group_by(ROW_ID, LABEL).len()
    raters = counts.group_by(ROW_ID).agg(pl.col("len").sum().alias("n"))
    shared = raters.filter(pl.col("n") >= 2)
    if shared.height < 2:
        return None
    counts = counts.join(shared, on=ROW_ID)
    per_row = counts.group_by(ROW_ID).agg(
        (
            (pl.col("len") * (pl.col("len") - 1)).sum()
            / (pl.col("n").first() * (pl.col("n").first() - 1))
        ).alias("agreement")
    )
    observed = cast(float, per_row["agreement"].mean())  # a float column's mean
    shares = counts.group_by(LABEL).agg(pl.col("len").sum())["len"].to_numpy()
    chance = float(((shares / shares.sum()) ** 2).sum())
    kappa = 1.0 if chance == 1 else (observed - chance) / (1 - chance)
    return {"rows": shared.height, "kappa": _finite(kappa)}


def _finite(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
