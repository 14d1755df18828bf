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
    more at once: polars' selection releases the GIL, so the columns' medians run on
    polars' threads' cores side by side.

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
    their count is even), found by selection (polars' ``bottom_k``, linear time) instead
    of polars' sort, and without numpy, whose import alone takes longer than every
    median of a million-row table (docs/benchmarks.md). None where no value is present.

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
    present = values.drop_nulls()
    count = present.len()
    if count == 0:
        return None
    if not (present.dtype.is_integer() or present.dtype == pl.Float64):
        present = present.cast(pl.Float64)
    # The smallest half and the middle value; the middle two are the largest of those.
    picked = present.bottom_k(count // 2 + 1).top_k(1 if count % 2 else 2).sort()
    if then is not None:
        picked = picked.to_frame().select(then).to_series()
    lower, upper = float(picked[0]), float(picked[-1])
    return lower if count % 2 else lower + (upper - lower) * 0.5
