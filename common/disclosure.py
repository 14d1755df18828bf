"""What of a site's statistics may leave it: no aggregate over a small group.

No aggregate over fewer than ``min_group_size`` rows may leave a site.

* A table with fewer than ``min_group_size`` rows is refused whole: it raises
  :class:`DataError`, nothing is released.
* A numeric column is released only if its count of present values and its
  count of missing values are each 0 or at least ``min_group_size``; otherwise it
  is withheld (absent from the result). Both must pass because the table's row
  count is released, and ``n_rows - count`` would give away a small missing
  group.
* In a categorical column, every category with fewer than ``min_group_size`` rows
  (zero-count ones included) and a missing-value group with fewer rows are folded
  into the category ``'__other__'``. If ``'__other__'`` then holds fewer than
  ``min_group_size`` rows, it is not dropped: dropping it would let anyone
  compute its size as ``n_rows`` minus the released counts. Instead the smallest
  released categories (ties: by name) are folded into it, one by one, until it is
  large enough; as a last resort the missing-value group too. A column whose
  whole total is below ``min_group_size`` is withheld.

This is threshold suppression, not differential privacy: stats released for two
versions of a table that differ by a few rows can still be subtracted, and a
released min or max is one row's exact value.
"""

from __future__ import annotations

from common.errors import ConfigError, DataError
from common.stats import OTHER, AnyStats, CategoryStats, ColumnStats, TableStats


def suppress_small_groups(stats: TableStats, min_group_size: int) -> TableStats:
    """What of ``stats`` may leave the site: no aggregate over < ``min_group_size`` rows.

    The policy is in this module's docstring: a too-small table raises
    :class:`DataError`; a numeric column with a small present or missing group is
    withheld; small categories (and a small missing group) are folded into
    ``'__other__'``, which is topped up from the smallest categories until it is
    large enough.
    """
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int):
        raise ConfigError(f"min_group_size must be an integer, got {min_group_size!r}")
    if min_group_size < 1:
        raise ConfigError(f"min_group_size must be >= 1, got {min_group_size}")
    if stats.n_rows < min_group_size:
        raise DataError(
            f"{stats.n_rows} rows, fewer than min_group_size={min_group_size}: "
            "no statistics of this table may leave the site"
        )
    released: dict[str, AnyStats] = {}
    for name, column in stats.columns.items():
        if isinstance(column, ColumnStats):
            if releasable(column.count, column.nulls, min_group_size):
                released[name] = column
        else:
            folded = _fold_categories(column, min_group_size)
            if folded is not None:
                released[name] = folded
    return TableStats(stats.n_rows, released)


def releasable(count: int, complement: int, min_group_size: int) -> bool:
    """Whether a count may leave: it and its complement are each 0 or >= ``min_group_size``.

    The complement matters because the total is released too: ``total - count``
    would give away a small complement.
    """
    return all(n == 0 or n >= min_group_size for n in (count, complement))


def _fold_categories(column: CategoryStats, k: int) -> CategoryStats | None:
    """``column`` with every group of fewer than ``k`` rows folded into '__other__'."""
    kept = {name: n for name, n in column.counts.items() if n >= k and name != OTHER}
    other = column.total - sum(kept.values())
    nulls = column.nulls
    if 0 < nulls < k:
        other, nulls = other + nulls, 0
    while 0 < other < k and kept:
        smallest = min(kept, key=lambda name: (kept[name], name))
        other += kept.pop(smallest)
    if 0 < other < k and nulls:
        other, nulls = other + nulls, 0
    if 0 < other < k:
        return None
    return CategoryStats({**kept, **({OTHER: other} if other else {})}, nulls)


def coarse_count(rows: int, min_group_size: int) -> int:
    """``rows`` rounded to a multiple of ``min_group_size``, and at least one multiple.

    What a site reports as its row count (the FedAvg weight, rows evaluated on) while
    its privacy is on: the coordinator learns the size to within ``min_group_size``
    rows, never whether one more row is there (except at a rounding boundary).
    """
    return max(min_group_size, min_group_size * round(rows / min_group_size))


def coarse_metric(value: float, rows: int, min_group_size: int) -> float:
    """A mean over ``rows`` rows rounded to the step ``min_group_size`` rows make.

    One row moves a rate (accuracy, F1, AUC) by about ``1 / rows``; the step is
    ``1 / (rows // min_group_size)`` (at least ``min_group_size / rows``, at most 1),
    so the released value resolves groups of ``min_group_size`` rows, not one, and a
    rate stays within [0, 1] (a step that does not divide 1 would round 1.0 past it).
    NaN stays NaN. Rounding, not DP: see docs/privacy/threat-model.md.
    """
    if value != value or rows <= 0:  # NaN: undefined stays undefined
        return value
    levels = max(1, rows // min_group_size)
    return round(round(value * levels) / levels, 12)
