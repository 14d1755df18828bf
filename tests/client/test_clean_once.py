"""``clean_with_unlabeled`` is ``clean`` twice, done once.

The clean table is ``clean(rows)``; the unlabeled table is the unlabeled rows of
``clean(rows, keep_unlabeled=True)`` (cleaned with the statistics of all rows), though
only the unlabeled rows are transformed.
"""

from __future__ import annotations

import pytest
from polars.testing import assert_frame_equal

from client.pipeline.clean import clean, clean_with_unlabeled
from tests.client.test_validate_clean import csv, site, validated

ROWS = csv(
    "1,40,90.5,0",
    "2,,700,1",
    "3,80,,",
    "4,,5.5,",
    "5,33,120,1",
    "6,95,0.5,0",
    "7,61,,1",
    "8,,300,",
    "5,33,120,1",
)


@pytest.mark.parametrize(
    "cleaning",
    [
        {"impute": "median", "outliers": "clip"},
        {"impute": "mean", "outliers": "winsorize", "winsorize_quantiles": [0.2, 0.8]},
        {"impute": "mode", "outliers": "none"},
        {"impute": "constant", "impute_value": -1.0, "outliers": "clip"},
        {"impute": "center", "outliers": "clip"},
        {"impute": "drop", "outliers": "winsorize"},
    ],
)
def test_clean_with_unlabeled_equals_clean_twice(tmp_path, cleaning):
    config = site(tmp_path, ROWS, cleaning=cleaning)
    rows = validated(config).valid
    cleaned, report, unlabeled = clean_with_unlabeled(rows, config)
    expected, expected_report = clean(rows, config)
    everything, _ = clean(rows, config, keep_unlabeled=True)
    assert_frame_equal(cleaned, expected)
    assert report == expected_report
    assert_frame_equal(unlabeled, everything.filter(everything["outcome"].is_null()))
    assert unlabeled.height == (0 if cleaning["impute"] == "drop" else 3)  # each lacks a value


def test_dedupe_by_candidates_equals_whole_row_unique(tmp_path):
    """Only rows whose id repeats or is missing are compared whole; same rows kept."""
    rows = [
        "1,40,90.5,0",
        "2,41,90.5,0",
        "1,40,90.5,0",  # a repeat
        "1,40,91.5,0",  # the same id, another row
        ",50,10,1",
        ",50,10,1",  # a repeat without an id
        ",50,11,1",
        "3,,,",
        "3,,,",  # a repeat of missing values
        "2,41,90.5,0",
    ]
    config = site(tmp_path, csv(*rows))
    rows = validated(config).valid
    content = [c for c in rows.columns if not c.startswith("_")]
    expected = rows.unique(subset=content, keep="first", maintain_order=True)
    cleaned, report = clean(rows, config, keep_unlabeled=True)
    assert report.duplicates_dropped == 4
    assert cleaned.select(content).rows() == expected.select(content).rows()


def test_consume_frees_the_input_and_cleans_the_same(tmp_path):
    config = site(tmp_path, ROWS, cleaning={"impute": "median"})
    rows = validated(config).valid
    expected = clean_with_unlabeled(rows, config)
    given = rows.clone()
    cleaned, report, unlabeled = clean_with_unlabeled(given, config, consume=True)
    assert given.width == 0  # its columns were dropped: their memory is freed
    assert_frame_equal(cleaned, expected[0])
    assert_frame_equal(unlabeled, expected[2])
    assert report == expected[1]
