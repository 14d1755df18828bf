"""How the global model treats this site's groups, and what it relies on.

Both are computed where the rows are and leave only as aggregates:

* Fairness counts: for each group of each ``sensitive`` column, indicator columns
  (null outside the group) of "prediction correct", "predicted positive", and
  "predicted positive" among the truly positive and among the truly negative rows.
  Their :class:`~common.stats.TableStats` (counts and sums, i.e. per-group rates)
  go through :func:`common.disclosure.suppress_small_groups`, so no rate over fewer
  than ``min_group_size`` rows leaves. The positive class is the last class.
* Permutation importance: the mean increase in per-row cross-entropy when one
  source column (all indicators of a category together) is shuffled among the
  site's rows; released only over at least ``min_group_size`` rows. Permutation
  importance is model-agnostic, measured on the sites' own held rows, and merges
  across sites as an example-weighted mean, which is why it was chosen over
  integrated gradients (which needs a baseline input and per-row attributions).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from torch import nn

from common.disclosure import suppress_small_groups
from common.errors import DataError
from common.features import ONE_HOT, FeatureSpec
from common.stats import table_stats

FAIRNESS_METRICS = ("correct", "selected", "selected_if_positive", "selected_if_negative")
PERMUTATION_REPEATS = 3


@torch.no_grad()
def predictions(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    return model(torch.from_numpy(x)).argmax(dim=1).numpy()


def fairness_stats(
    y: np.ndarray, predicted: np.ndarray, groups: pl.DataFrame, positive: int, k: int
) -> str | None:
    """Per-group indicator statistics (TableStats JSON) that may leave; None if none may."""
    if groups.width == 0 or len(y) == 0:
        return None
    truth, chosen, correct = y == positive, predicted == positive, y == predicted
    columns: dict[str, np.ndarray] = {}
    for column in groups.columns:
        values = groups.get_column(column).fill_null("(missing)")
        for group in values.unique().sort().to_list():
            member = (values == group).to_numpy()
            for metric, indicator, where in (
                ("correct", correct, member),
                ("selected", chosen, member),
                ("selected_if_positive", chosen, member & truth),
                ("selected_if_negative", chosen, member & ~truth),
            ):
                # NaN outside the group counts as missing: the column's stats are the group's
                columns[f"{column}={group}|{metric}"] = np.where(where, indicator * 1.0, np.nan)
    frame = pl.DataFrame(columns)
    try:
        return suppress_small_groups(table_stats(frame, list(frame.columns), []), k).to_json()
    except DataError:
        return None


@torch.no_grad()
def permutation_importance(
    model: nn.Module, x: np.ndarray, y: np.ndarray, spec: FeatureSpec, seed: int, k: int
) -> dict[str, float] | None:
    """Mean per-row loss increase when each source column is shuffled; None below k rows."""
    if len(y) < k or len(y) < 2:
        return None
    model.eval()
    labels = torch.from_numpy(y)
    base = nn.functional.cross_entropy(model(torch.from_numpy(x)), labels).item()
    sources: dict[str, list[int]] = {}
    for index, name in enumerate(spec.features):
        sources.setdefault(name.split(ONE_HOT, 1)[0], []).append(index)
    rng = np.random.default_rng(seed)
    importance = {}
    for source, indices in sources.items():
        increases = []
        for _ in range(PERMUTATION_REPEATS):
            shuffled = x.copy()
            shuffled[:, indices] = x[rng.permutation(len(y))][:, indices]
            loss = nn.functional.cross_entropy(model(torch.from_numpy(shuffled)), labels).item()
            increases.append(loss - base)
        importance[source] = float(np.mean(increases))
    return importance
