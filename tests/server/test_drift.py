"""Drift: a site whose features shift between versions is flagged, an unchanged one is not.

Real sites: raw CSVs, ``prepare`` into Delta versions, the site's own statistics
(small groups suppressed), the server's PSI.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from client.federation.statistics import site_statistics
from client.pipeline.prepare import prepare
from client.site import Site
from common.config import load_site_config
from common.features import FeatureSpec
from common.stats import OTHER, CategoryStats, TableStats
from server.drift import statistics_record
from simulations.data.datasets import synthetic_groups
from simulations.data.sites import write_site

ROWS = 400
THRESHOLD = 0.25


def _write(root, index, rows, dataset):
    path = write_site(root, index, rows, dataset, epsilon=3.0, delta=1e-5)
    prepare(load_site_config(path))
    return path


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    """Three sites, two clean versions each; site-000's x1 shifts between its versions."""
    root = tmp_path_factory.mktemp("drift")
    dataset = synthetic_groups(rows=6 * ROWS, disparity=0.0, seed=3)
    frame = dataset.frame
    paths = []
    for index in range(3):
        paths.append(_write(root, index, frame[index * ROWS : (index + 1) * ROWS], dataset))
    for index in range(3):
        later = frame[(3 + index) * ROWS : (4 + index) * ROWS]
        if index == 0:
            later = later.with_columns((pl.col("x1") + 1.5).clip(-4, 4))
        _write(root, index, later, dataset)  # a new clean version at every site
    sites = [Site.from_path(p) for p in paths]
    spec, _ = FeatureSpec.merge([s.declared_spec() for s in sites])
    statistics = {s.name: site_statistics(s, spec) for s in sites}
    return statistics, spec


def test_shifted_site_is_flagged_and_unchanged_ones_are_not(drifted, caplog):
    statistics, spec = drifted
    with caplog.at_level("WARNING", logger="fedlife.drift"):
        record = statistics_record(statistics, spec, THRESHOLD)
    drift = record["drift"]
    assert all(s["previous_version"] is not None for s in statistics.values())
    flagged = {(r["site"], r["column"]) for r in drift["flagged"]}
    assert ("site-000", "x1") in flagged
    assert {site for site, _ in flagged} == {"site-000"}, drift["flagged"]

    shifted = next(r for r in drift["rows"] if (r["site"], r["column"]) == ("site-000", "x1"))
    assert shifted["psi_previous"] > THRESHOLD
    steady = [r for r in drift["rows"] if r["site"] != "site-000"]
    assert steady and all(r["psi_previous"] < 0.1 for r in steady)
    untouched = [r for r in drift["rows"] if r["site"] == "site-000" and r["column"] == "x5"]
    assert untouched[0]["psi_previous"] < 0.1

    lines = record["warnings"]  # logged during the run, kept for the report
    assert len(lines) == 1 and "site-000" in lines[0] and "x1" in lines[0]
    assert lines[0] in caplog.text
    assert record["versions"]["site-001"] == {"version": 1, "previous_version": 0}


def test_only_suppressed_aggregates_leave_the_site(drifted):
    statistics, spec = drifted
    drift = statistics_record(statistics, spec, THRESHOLD)["drift"]
    for reply in statistics.values():
        json.dumps(reply)  # what crosses the wire is plain JSON
        assert set(reply) == {
            "version",
            "histograms",
            "previous_version",
            "previous_histograms",
            "quality",
        }
        for text in (reply["histograms"], reply["previous_histograms"]):
            stats = TableStats.from_json(text)
            assert {"x0", "x1", "region", "outcome"} <= set(stats.columns)
            for column in stats.columns.values():
                assert isinstance(column, CategoryStats)
                assert all(n >= 10 for n in column.counts.values()), column.counts
                assert column.nulls == 0 or column.nulls >= 10
    # a bin too small to release is folded, not dropped: every clean row is counted
    for reply in statistics.values():
        for column in TableStats.from_json(reply["histograms"]).columns.values():
            assert column.total + column.nulls == reply["quality"]["rows_clean"]
    rows = sum(s["quality"]["rows_clean"] for s in statistics.values())
    for column in drift["federation"].values():
        assert sum(column["counts"].values()) + column["nulls"] == rows


def test_psi_is_zero_for_identical_and_large_for_disjoint_histograms():
    from common.histograms import psi

    same = CategoryStats({"0": 50, "1": 50})
    assert psi(same, same) == pytest.approx(0.0)
    moved = CategoryStats({"0": 5, "1": 95})
    assert psi(same, moved) > 0.5
    # bins one side folded into __other__ are pooled, not read as drift
    folded = CategoryStats({"0": 50, OTHER: 50})
    assert psi(same, folded) == pytest.approx(0.0)
    assert np.isfinite(psi(same, CategoryStats({"0": 100})))


def test_a_site_that_folded_a_bin_does_not_make_the_others_drift():
    """One site released a near-constant column only as '__other__'; another kept bin '0'."""
    from common.histograms import federation_histogram, psi

    kept = CategoryStats({"0": 650})
    folded = CategoryStats({OTHER: 658})
    also_kept = CategoryStats({"0": 600, "3": 40})
    federation = federation_histogram([kept, folded, also_kept])
    assert federation.counts == {"0": 1250, OTHER: 40}  # '3' is pooled: not every site shows it
    assert psi(federation, kept) < THRESHOLD  # without pooling it would be above 4
    assert federation_histogram([folded]) is None
