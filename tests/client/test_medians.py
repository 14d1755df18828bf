"""Medians by selection equal polars' own, value for value."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from client.pipeline.medians import median_of, medians


@pytest.mark.parametrize("size", [1, 2, 3, 10, 11, 1000, 1001])
def test_median_of_equals_polars(size: int) -> None:
    rng = np.random.default_rng(size)
    missing = pl.Series(rng.random(size) < 0.2)
    floats = pl.Series(rng.normal(size=size))
    ints = pl.Series(rng.integers(-5, 5, size))
    for values in (
        floats,
        floats.zip_with(~missing, pl.Series([None] * size, dtype=pl.Float64)),
        ints,
        ints.zip_with(~missing, pl.Series([None] * size, dtype=pl.Int64)),
        pl.Series(rng.random(size) < 0.5),
        floats.cast(pl.Float32),
    ):
        assert median_of(values) == values.cast(pl.Float64).median(), values.dtype


def test_median_of_nothing_present_is_none() -> None:
    assert median_of(pl.Series([None, None], dtype=pl.Int64)) is None


def test_medians_of_expressions_by_name() -> None:
    frame = pl.DataFrame({"a": [1.0, 5.0, None, 3.0], "b": [4, 2, 9, 1]})
    found = medians(frame, {"a": pl.col("a"), "b": pl.col("b").clip(0, 3)})
    assert found == {"a": 3.0, "b": 2.5}


@pytest.mark.parametrize("size", [2, 3, 10, 11, 1000, 1001])
def test_median_of_clipped_values_equals_median_of_clipped_column(size: int) -> None:
    """The clip applied to the middle values gives the clipped column's median, also
    where the two middle values lie on both sides of a bound."""
    rng = np.random.default_rng(size)
    floats = pl.Series("x", rng.normal(size=size))
    ints = pl.Series("x", rng.integers(-5, 5, size))
    for values in (
        floats,
        ints,
        ints.zip_with(pl.Series(rng.random(size) < 0.8), pl.Series([None] * size, dtype=pl.Int64)),
    ):
        for low, high in ((-0.1, 0.1), (0.0, 50.0), (-2.5, 1.5)):
            clip = pl.col("x").clip(low, high)
            expected = values.to_frame().select(clip).to_series().cast(pl.Float64).median()
            assert median_of(values, clip) == expected, (values.dtype, low, high)
