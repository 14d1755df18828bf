"""Row counts and metrics as they leave a site with privacy on (common.disclosure)."""

from __future__ import annotations

import math

from common.config import PRIVATE_TEST_FRACTION, TrainingSection
from common.disclosure import coarse_count, coarse_metric


def test_counts_are_multiples_of_the_group_size_and_never_zero():
    assert [coarse_count(n, 10) for n in (0, 1, 4, 5, 6, 14, 15, 16, 120)] == [
        10,
        10,
        10,
        10,
        10,
        10,
        20,
        20,
        120,
    ]
    assert all(coarse_count(n, 7) % 7 == 0 and coarse_count(n, 7) >= 7 for n in range(200))


def test_one_row_moves_a_coarse_rate_by_at_most_one_step():
    rows, k = 200, 10
    step = k / rows
    for correct in range(rows):
        here, there = (coarse_metric(c / rows, rows, k) for c in (correct, correct + 1))
        assert abs(there - here) <= step + 1e-9
        assert abs(round(here / step) * step - here) < 1e-9  # on the grid
    distinct = {coarse_metric(c / rows, rows, k) for c in range(rows + 1)}
    assert len(distinct) == rows // k + 1  # 21 values, not 201


def test_a_small_split_releases_only_all_or_nothing_and_nan_stays_nan():
    assert {coarse_metric(c / 6, 6, 10) for c in range(7)} == {0.0, 1.0}
    assert math.isnan(coarse_metric(math.nan, 50, 10))


def test_rows_are_held_out_by_default_only_while_privacy_is_on():
    assert TrainingSection().held_out(private=True) == PRIVATE_TEST_FRACTION > 0
    assert TrainingSection().held_out(private=False) == 0.0
    assert TrainingSection(test_fraction=0.3).held_out(private=True) == 0.3


def test_a_coarse_rate_stays_a_rate_when_the_rows_are_no_multiple_of_the_group():
    # 15 rows, groups of 10: a step of 10/15 would have rounded 1.0 to 1.33, which the
    # evaluate reply's contract refuses (a simulation's every evaluate round failed).
    for rows in range(1, 60):
        released = {coarse_metric(c / rows, rows, 10) for c in range(rows + 1)}
        assert min(released) == 0.0 and max(released) == 1.0, rows
        assert all(0.0 <= value <= 1.0 for value in released)
