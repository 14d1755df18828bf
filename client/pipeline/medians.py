"""Exact medians by selection, a column at a time, columns side by side."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import polars as pl


def medians(
    frame: pl.DataFrame,
    columns: dict[str, pl.Expr],
    *,
    then: dict[str, pl.Expr] | None = None,
) -> dict[str, float | None]:
    """Each expression's ``median_of`` over ``frame``'s rows, by name.

    One column at a time (a median holds its column's values, not the frame's), two or
    more at once: numpy's selection and polars' select release the GIL, so the columns'
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
    their count is even), found by selection (numpy's ``partition``, linear time)
    instead of polars' sort: a third of the CPU time. None where no value is present.

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
    count = values.len() - values.null_count()
    if count == 0:
        return None
    dtype: pl.DataType = values.dtype
    if not (dtype.is_integer() or dtype == pl.Float64):
        values, dtype = values.cast(pl.Float64), pl.Float64()
    if values.null_count():
        values = values.drop_nulls()  # cheaper than to_numpy's nulls as NaN
    # One copy, selected in place around the middle; the lower of two middle values is
    # the largest value before it (a second selection takes four times as long).
    array, middle = values.to_numpy(writable=True), count // 2
    array.partition(middle)
    picked = [array[middle]] if count % 2 else [array[:middle].max(), array[middle]]
    if then is not None:
        taken = pl.Series(values.name, picked, dtype=dtype).to_frame().select(then)
        picked = taken.to_series().to_list()
    lower, upper = float(picked[0]), float(picked[-1])
    return lower if count % 2 else lower + (upper - lower) * 0.5
