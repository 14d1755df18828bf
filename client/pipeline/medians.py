"""Exact medians by selection, a column at a time, columns side by side."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import polars as pl


def medians(frame: pl.DataFrame, columns: dict[str, pl.Expr]) -> dict[str, float | None]:
    """Each expression's ``median_of`` over ``frame``'s rows, by name.

    One column at a time (a median holds its column's values, not the frame's), two or
    more at once: numpy's selection and polars' select release the GIL, so the columns'
    medians run on polars' threads' cores side by side.

    Parameters
    ----------
    frame : the rows.
    columns : each result's name and the expression whose values it is the median of.
    """

    def one(expression: pl.Expr) -> float | None:
        return median_of(frame.select(expression).to_series())

    with ThreadPoolExecutor(max_workers=max(1, pl.thread_pool_size())) as pool:
        return dict(zip(columns, pool.map(one, columns.values()), strict=True))


def median_of(values: pl.Series) -> float | None:
    """``values.median()`` exactly (the two middle values' ``a + (b - a) * 0.5`` where
    their count is even), found by selection (numpy's ``partition``, linear time)
    instead of polars' sort: a third of the CPU time. None where no value is present."""
    if values.dtype.is_float() and values.is_nan().any():
        return values.median()  # type: ignore[return-value]  # NaN's order: polars'
    count = values.len() - values.null_count()
    if count == 0:
        return None
    if values.dtype not in (pl.Int64, pl.Float64):
        values = values.cast(pl.Float64)
    # One copy, selected in place: nulls become NaN, which partition puts after every
    # number, so the first ``count`` places hold the present values in order. Ints
    # without nulls stay ints (casting to float keeps their order).
    array, middle = values.to_numpy(writable=True), count // 2
    if count % 2:
        array.partition(middle)
        return float(array[middle])
    array.partition([middle - 1, middle])
    lower, upper = float(array[middle - 1]), float(array[middle])
    return lower + (upper - lower) * 0.5
