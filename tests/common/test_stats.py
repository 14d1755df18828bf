"""Statistics that merge across sites: exact merges, JSON, small-group suppression."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from itertools import permutations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.disclosure import suppress_small_groups
from common.errors import ConfigError, DataError
from common.stats import (
    OTHER,
    CategoryStats,
    ColumnStats,
    TableStats,
    table_stats,
)

NUMERIC, CATEGORICAL = ["x", "n"], ["c"]

numbers = st.one_of(
    st.none(),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
)
letters = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "é", "a b"]))


@st.composite
def frames(draw, min_size: int = 0) -> pl.DataFrame:
    """A frame with a float column (nulls, sometimes NaN), an int and a category column."""
    size = draw(st.integers(min_value=min_size, max_value=40))
    x = draw(st.lists(st.one_of(numbers, st.just(math.nan)), min_size=size, max_size=size))
    n = draw(st.lists(st.one_of(st.none(), st.integers(-1000, 1000)), min_size=size, max_size=size))
    c = draw(st.lists(letters, min_size=size, max_size=size))
    return pl.DataFrame(
        {
            "x": pl.Series(x, dtype=pl.Float64),
            "n": pl.Series(n, dtype=pl.Int64),
            "c": pl.Series(c, dtype=pl.String),
        }
    )


def stats_of(frame: pl.DataFrame) -> TableStats:
    return table_stats(frame, NUMERIC, CATEGORICAL)


def present(frame: pl.DataFrame, column: str) -> np.ndarray:
    """The column's values that are neither null nor NaN, as floats (independently)."""
    values = [v for v in frame.get_column(column).to_list() if v is not None]
    return np.array([float(v) for v in values if not math.isnan(v)], dtype=float)


def assert_close(merged: ColumnStats, direct: ColumnStats) -> None:
    assert (merged.count, merged.nulls, merged.min, merged.max) == (
        direct.count,
        direct.nulls,
        direct.min,
        direct.max,
    )
    assert float(merged.sum) == pytest.approx(float(direct.sum), rel=1e-12, abs=1e-6)
    assert float(merged.sum_sq) == pytest.approx(float(direct.sum_sq), rel=1e-12, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(first=frames(), second=frames())
def test_merged_stats_equal_the_stats_of_the_concatenated_frame(first, second):
    merged = stats_of(first).merge(stats_of(second))
    direct = stats_of(pl.concat([first, second]))

    assert merged.n_rows == direct.n_rows == first.height + second.height
    assert merged.columns.keys() == direct.columns.keys() == {"x", "n", "c"}
    for name in NUMERIC:
        assert_close(merged.columns[name], direct.columns[name])
    assert merged.columns["c"] == direct.columns["c"]


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(frames(), min_size=3, max_size=4))
def test_merge_order_does_not_matter_exactly(parts):
    stats = [stats_of(p) for p in parts]
    results = set()
    for order in permutations(stats):
        left = order[0]
        for s in order[1:]:
            left = left.merge(s)
        right = order[-1]
        for s in reversed(order[:-1]):
            right = s.merge(right)
        results.add(left.to_json())
        results.add(right.to_json())
    assert len(results) == 1  # bit-identical, whatever the order and grouping


def test_sums_merge_exactly_where_floats_would_round():
    big = ColumnStats(1, sum=1e16, sum_sq=1e32, min=1e16, max=1e16)
    one = ColumnStats(1, sum=1.0, sum_sq=1.0, min=1.0, max=1.0)
    assert (1e16 + 1.0) + 1.0 != 1e16 + (1.0 + 1.0)  # floats alone are not associative
    left, right = big.merge(one).merge(one), big.merge(one.merge(one))
    assert left == right
    assert left.sum == Fraction(10**16 + 2)


@settings(max_examples=80, deadline=None)
@given(frame=frames())
def test_mean_and_std_match_numpy(frame):
    for name in NUMERIC:
        stats = stats_of(frame).columns[name]
        values = present(frame, name)
        assert stats.count == values.size
        assert stats.nulls == frame.height - values.size
        if values.size == 0:
            assert stats.mean is stats.variance is stats.std is stats.min is None
            continue
        spread = float(np.max(np.abs(values)))
        assert stats.mean == pytest.approx(float(np.mean(values)), rel=1e-9, abs=1e-9 * spread)
        # population variance from sums: absolute error ~ eps * sum of squares / n
        tolerance = 1e-12 * (1.0 + spread) ** 2
        assert stats.variance == pytest.approx(float(np.var(values)), rel=1e-6, abs=tolerance)
        assert stats.std == pytest.approx(float(np.std(values)), rel=1e-6, abs=math.sqrt(tolerance))
        assert (stats.min, stats.max) == (float(values.min()), float(values.max()))


def test_category_counts_and_nulls():
    frame = pl.DataFrame({"c": ["a", "b", None, "a", "a"], "flag": [True, False, None, True, True]})
    stats = table_stats(frame, [], ["c", "flag"])
    assert stats.columns["c"] == CategoryStats({"a": 3, "b": 1}, nulls=1)
    assert stats.columns["flag"] == CategoryStats({"true": 3, "false": 1}, nulls=1)
    assert stats.columns["c"].total == 4


@settings(max_examples=50, deadline=None)
@given(frame=frames())
def test_json_round_trip_is_exact(frame):
    stats = stats_of(frame)
    text = stats.to_json()
    assert isinstance(json.loads(text), dict)  # plain JSON: fits a ConfigRecord string
    assert TableStats.from_json(text) == stats
    assert TableStats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"count": -1}, "count"),
        ({"count": 1, "nulls": -2, "min": 0.0, "max": 0.0}, "nulls"),
        ({"count": 2, "sum": 3.0, "sum_sq": 5.0, "min": 2.0, "max": 1.0}, "min"),
        ({"count": 2, "sum": 3.0, "sum_sq": 5.0}, "min and a max"),
        ({"count": 0, "min": 1.0, "max": 1.0}, "zero values"),
        ({"count": 0, "sum": 1.0}, "zero values"),
        ({"count": 1, "sum": math.inf, "min": 1.0, "max": 1.0}, "finite"),
        ({"count": 1, "sum_sq": -1.0, "min": 1.0, "max": 1.0}, "sum_sq"),
        ({"count": 1.5}, "integer"),
    ],
)
def test_invalid_column_stats_are_refused(fields, needle):
    with pytest.raises(DataError, match=needle):
        ColumnStats(**fields)


def test_invalid_category_and_table_stats_are_refused():
    with pytest.raises(DataError, match="count of category"):
        CategoryStats({"a": -1})
    with pytest.raises(DataError, match="covers 5 rows of only 4"):
        TableStats(4, {"c": CategoryStats({"a": 3}, nulls=2)})
    with pytest.raises(DataError, match="numeric on one side"):
        TableStats(3, {"c": CategoryStats({"a": 3})}).merge(
            TableStats(1, {"c": ColumnStats(1, sum=1, sum_sq=1, min=1, max=1)})
        )
    with pytest.raises(DataError, match="kind"):
        TableStats.from_dict({"n_rows": 1, "columns": {"c": {"kind": "sketch"}}})
    with pytest.raises(DataError, match="not valid JSON"):
        TableStats.from_json("{not json")
    with pytest.raises(DataError, match="not a number"):
        ColumnStats.from_dict({"kind": "numeric", "count": 1, "sum": "one", "min": 1, "max": 1})


def test_table_stats_refuses_bad_columns():
    frame = pl.DataFrame({"x": [1.0, math.inf], "s": ["a", OTHER]})
    with pytest.raises(DataError, match="infinite"):
        table_stats(frame, ["x"], [])
    with pytest.raises(DataError, match="reserved"):
        table_stats(frame, [], ["s"])
    with pytest.raises(DataError, match="not numeric"):
        table_stats(frame, ["s"], [])
    with pytest.raises(DataError, match="not in the table"):
        table_stats(frame, ["nope"], [])
    with pytest.raises(DataError, match="more than once"):
        table_stats(frame, ["x"], ["x"])


def test_columns_on_one_side_only_are_kept():
    a = table_stats(pl.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}), ["x"], ["c"])
    b = table_stats(pl.DataFrame({"x": [3.0]}), ["x"], [])
    merged = a.merge(b)
    assert merged == b.merge(a)
    assert merged.n_rows == 3
    assert merged.columns["x"] == ColumnStats(3, sum=6, sum_sq=14, min=1, max=3)
    assert merged.columns["c"] == CategoryStats({"a": 1, "b": 1})


# --- small groups -------------------------------------------------------------------


def test_a_table_smaller_than_the_group_size_is_refused():
    stats = table_stats(pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), ["x"], [])
    with pytest.raises(DataError, match="4 rows, fewer than min_group_size=5"):
        suppress_small_groups(stats, 5)
    assert suppress_small_groups(stats, 4) == stats
    with pytest.raises(ConfigError, match="min_group_size"):
        suppress_small_groups(stats, 0)


def test_small_categories_fold_into_other():
    stats = TableStats(20, {"c": CategoryStats({"a": 10, "b": 3, "c": 2, "d": 5})})
    released = suppress_small_groups(stats, 5)
    assert released.columns["c"] == CategoryStats({"a": 10, "d": 5, OTHER: 5})


def test_a_small_other_takes_the_smallest_categories_until_large_enough():
    # dropping a 2-row '__other__' would leak it: n_rows - released counts = 2
    stats = TableStats(20, {"c": CategoryStats({"a": 7, "b": 6, "c": 5, "d": 2})})
    released = suppress_small_groups(stats, 5)
    assert released.columns["c"] == CategoryStats({"a": 7, "b": 6, OTHER: 7})


def test_a_small_missing_group_folds_into_other():
    stats = TableStats(20, {"c": CategoryStats({"a": 10, "b": 8}, nulls=2)})
    released = suppress_small_groups(stats, 5)
    assert released.columns["c"] == CategoryStats({"a": 10, OTHER: 10}, nulls=0)


def test_numeric_columns_with_a_small_group_are_withheld():
    ok = ColumnStats(10, nulls=0, sum=10, sum_sq=10, min=1, max=1)
    few_values = ColumnStats(3, nulls=7, sum=3, sum_sq=3, min=1, max=1)
    few_missing = ColumnStats(8, nulls=2, sum=8, sum_sq=8, min=1, max=1)
    all_missing = ColumnStats(0, nulls=10)
    stats = TableStats(10, {"ok": ok, "few": few_values, "gap": few_missing, "none": all_missing})
    released = suppress_small_groups(stats, 5)
    assert dict(released.columns) == {"ok": ok, "none": all_missing}


@settings(max_examples=80, deadline=None)
@given(frame=frames(min_size=1), k=st.integers(min_value=1, max_value=12))
def test_nothing_released_covers_fewer_than_the_group_size(frame, k):
    stats = stats_of(frame)
    if frame.height < k:
        with pytest.raises(DataError):
            suppress_small_groups(stats, k)
        return
    released = suppress_small_groups(stats, k)
    assert released.n_rows == frame.height
    for name, column in released.columns.items():
        if isinstance(column, ColumnStats):
            assert not 0 < column.count < k and not 0 < column.nulls < k
            assert column == stats.columns[name]
        else:
            assert all(n >= k for n in column.counts.values()), column
            assert not 0 < column.nulls < k
            # nothing is dropped, so no small group can be recovered by subtraction
            assert column.total + column.nulls == frame.height
            original = stats.columns[name]
            for category, n in column.counts.items():
                if category != OTHER:
                    assert original.counts[category] == n
    for name in NUMERIC:  # withheld only when a group really is small
        if name not in released.columns:
            original = stats.columns[name]
            assert 0 < original.count < k or 0 < original.nulls < k
    # a categorical column always survives a table that is large enough
    assert "c" in released.columns
