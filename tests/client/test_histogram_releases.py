"""A new version's histograms leave only when enough rows changed since each release."""

from __future__ import annotations

import json

from client.federation.statistics import site_statistics
from client.privacy.released_histograms import differences_releasable
from client.site import Site
from common.features import FeatureSpec
from common.stats import CategoryStats, TableStats
from simulations.data.datasets import synthetic_groups
from tests.server.test_drift import _write

ROWS = 200


def _release(root, rows, dataset):
    site = Site.from_path(_write(root, 0, rows, dataset))
    spec, _ = FeatureSpec.merge([site.declared_spec()])
    return site_statistics(site, spec)


def test_a_version_that_adds_too_few_rows_is_not_released(tmp_path):
    dataset = synthetic_groups(rows=2 * ROWS, disparity=0.0, seed=5)
    frame = dataset.frame
    first = _release(tmp_path, frame[:ROWS], dataset)
    assert first["version"] == 0 and first["histograms"] is not None

    few = _release(tmp_path, frame[: ROWS + 3], dataset)  # version 1: 3 more rows
    assert few["version"] == 0  # version 1 withheld: the last release sent again
    assert few["histograms"] == first["histograms"] and few["previous_histograms"] is None

    enough = _release(tmp_path, frame[: ROWS + 15], dataset)  # 15 rows since version 0
    assert enough["version"] == 2 and enough["previous_version"] == 0
    assert enough["previous_histograms"] == first["histograms"]
    assert enough["histograms"] != first["histograms"]
    released = json.loads(
        (tmp_path / "site-000" / "store" / "privacy" / "released-histograms.json").read_text()
    )
    assert sorted(next(iter(released.values()))) == ["0", "2"]


def test_histogram_differences_without_the_rows():
    old = TableStats(40, {"a": CategoryStats({"0": 20, "1": 20})})
    moved = TableStats(40, {"a": CategoryStats({"0": 25, "1": 15})})  # 5 + 5 changed
    assert differences_releasable(old, old, 10)
    assert differences_releasable(moved, old, 10)
    assert not differences_releasable(moved, old, 11)
    grown = TableStats(42, {"a": CategoryStats({"0": 22, "1": 20})})
    assert not differences_releasable(grown, old, 10)
