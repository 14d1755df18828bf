"""Adding or removing one row moves each released vector by at most its declared bound.

The Gaussian mechanism's noise is calibrated to that bound; a release that depends on
other rows (a mean imputed from the site's rows, say) breaks it without a sound.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from client.privacy.release import exact_moments, sensitivity
from common.features import FeatureSpec

SPEC = FeatureSpec(["a", "b", "c"], [0.0, -5.0, 1.0], [10.0, 5.0, 1000.0], "y", ["0", "1"])
value = st.one_of(st.none(), st.floats(-1e4, 1e4, allow_nan=False))
row = st.tuples(value, value, value)


def _frame(rows: list[tuple]) -> pl.DataFrame:
    columns = list(zip(*rows)) if rows else [[], [], []]
    return pl.DataFrame(
        {name: pl.Series(name, list(col), dtype=pl.Float64) for name, col in zip("abc", columns)}
        | {"y": pl.Series("y", [0] * len(rows), dtype=pl.Int64)}
    )


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=40), extra=row, squares=st.booleans())
def test_one_row_moves_the_moments_by_at_most_their_bound(rows, extra, squares):
    without = exact_moments(_frame(rows), SPEC, squares=squares)
    with_row = exact_moments(_frame([*rows, extra]), SPEC, squares=squares)
    bound = sensitivity(SPEC.num_features, squares=squares)
    assert np.linalg.norm(with_row - without) <= bound + 1e-9


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(row, min_size=2, max_size=40), index=st.integers(0, 39))
def test_a_missing_value_moves_no_other_rows_contribution(rows, index):
    """Imputing a site mean would move every imputed row when one row changes."""
    index %= len(rows)
    base = [(None, None, None), *rows]
    changed = list(base)
    changed[1 + index] = (10.0, 5.0, 1000.0)
    moved = exact_moments(_frame(changed), SPEC) - exact_moments(_frame(base), SPEC)
    assert np.linalg.norm(moved) <= np.sqrt(2) * sensitivity(SPEC.num_features) + 1e-9
