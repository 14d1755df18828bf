"""Exact medians by selection, a column at a time, columns side by side."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import polars as pl

# Values in a column from which its median is selected by numpy (``_middle``).
NUMPY_FROM = 2_000_000


def medians(
    frame: pl.DataFrame,
    columns: dict[str, pl.Expr],
    *,
    then: dict[str, pl.Expr] | None = None,
) -> dict[str, float | None]:
    """Each expression's ``median_of`` over ``frame``'s rows, by name.

    One column at a time (a median holds its column's values, not the frame's), two or
    more at once: polars' and numpy's selections release the GIL, so the columns'
    medians run on polars' threads' cores side by side.

    Parameters
    ----------
    frame : the rows.
    columns : each result's name and the expression whose values it is the median of.
    then : by result name, an order-keeping elementwise expression of that column (a
        clip): the median of its values instead (``median_of``'s ``then``).
    """
    after = then or {}

    def one(name: str) -> float | None:
        return median_of(frame.select(columns[name]).to_series(), after.get(name))

    with ThreadPoolExecutor(max_workers=max(1, pl.thread_pool_size())) as pool:
        return dict(zip(columns, pool.map(one, columns), strict=True))


def median_of(values: pl.Series, then: pl.Expr | None = None) -> float | None:
    """``values.median()`` exactly (the two middle values' ``a + (b - a) * 0.5`` where
    their count is even), found by selection (linear time) instead of polars' sort.
    None where no value is present.

    Parameters
    ----------
    values : the values.
    then : an elementwise expression of ``values``' column that keeps their order (such
        as a clip): the median of its values instead, from its values of the two middle
        ones (a clipped value's rank is its value's), so it runs on two values, not all.
    """
    if values.dtype.is_float() and values.is_nan().any():
        if then is not None:
            values = values.to_frame().select(then).to_series()
        return values.median()  # type: ignore[return-value]  # NaN's order: polars'
    present = values.drop_nulls() if values.null_count() else values  # no copy without nulls
    count = present.len()
    if count == 0:
        return None
    if not (present.dtype.is_integer() or present.dtype == pl.Float64):
        present = present.cast(pl.Float64)
    picked = _middle(present)
    if then is not None:
        picked = picked.to_frame().select(then).to_series()
    lower, upper = float(picked[0]), float(picked[-1])
    return lower if count % 2 else lower + (upper - lower) * 0.5


def _middle(present: pl.Series) -> pl.Series:
    """The middle value of ``present`` (no nulls), or the two middle ones where their
    count is even, in ascending order.

    numpy's ``partition`` selects in about half the time of polars' ``bottom_k``, but
    importing numpy costs about what that saves over a table's medians (two a feature)
    of ``NUMPY_FROM`` values each: polars selects in shorter columns (a million-row
    site's), numpy in longer ones.
    """
    count, middle = present.len(), present.len() // 2
    if count < NUMPY_FROM:
        # The smallest half and the middle value; the middle two are the largest of those.
        return present.bottom_k(middle + 1).top_k(1 if count % 2 else 2).sort()
    # One copy, selected in place around the middle; the lower of two middle values is
    # the largest value before it (a second selection takes four times as long).
    array = present.to_numpy(writable=True)
    array.partition(middle)
    picked = [array[middle]] if count % 2 else [array[:middle].max(), array[middle]]
    return pl.Series(present.name, picked, dtype=present.dtype)
