"""Medians by selection equal polars' own, value for value, by either selection."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from client.pipeline import medians as module
from client.pipeline.medians import median_of, medians


@pytest.fixture(autouse=True, params=["polars", "numpy"])
def selection(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with each selection: polars' for every column, then numpy's."""
    monkeypatch.setattr(module, "NUMPY_FROM", 0 if request.param == "numpy" else 1 << 62)
    return request.param


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


def test_long_columns_are_selected_by_numpy_short_ones_by_polars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "NUMPY_FROM", 4)
    selected: list[int] = []
    original = pl.Series.bottom_k

    def bottom_k(series: pl.Series, k: int) -> pl.Series:
        selected.append(series.len())
        return original(series, k)

    monkeypatch.setattr(pl.Series, "bottom_k", bottom_k)
    assert median_of(pl.Series([3.0, 1.0, 2.0])) == 2.0
    assert median_of(pl.Series([4.0, 3.0, 1.0, 2.0, 9.0])) == 3.0
    assert selected == [3]  # polars' selection took the short column only
