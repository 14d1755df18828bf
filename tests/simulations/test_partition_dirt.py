"""Partitioning rows across virtual sites and injecting dirt into their raw files."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from client.pipeline.prepare import prepare
from client.site import Site
from common.config import load_site_config
from common.errors import ConfigError
from simulations.data.datasets import breast_cancer
from simulations.data.dirt import DirtSpec, inject
from simulations.data.partition import dirichlet, iid, natural, quantity
from simulations.data.sites import write_site


def labels(n: int = 300, classes: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, size=n)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_exact_cover(parts: list[np.ndarray], num_rows: int) -> None:
    everything = np.concatenate(parts)
    assert len(everything) == num_rows  # no row twice
    assert np.array_equal(np.sort(everything), np.arange(num_rows))  # every row once


def same_parts(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("num_sites", [1, 4, 7])
def test_iid_covers_every_row_once_in_near_equal_parts(num_sites):
    parts = iid(101, num_sites, rng(0))

    assert len(parts) == num_sites
    assert_exact_cover(parts, 101)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_iid_is_deterministic_per_seed():
    assert same_parts(iid(100, 5, rng(3)), iid(100, 5, rng(3)))
    assert not same_parts(iid(100, 5, rng(3)), iid(100, 5, rng(4)))


@pytest.mark.parametrize(("alpha", "num_sites"), [(0.1, 3), (0.5, 5), (100.0, 8)])
def test_dirichlet_covers_every_row_once_with_min_rows(alpha, num_sites):
    y = labels()

    parts = dirichlet(y, num_sites, alpha, rng(0), min_rows=15)

    assert len(parts) == num_sites
    assert_exact_cover(parts, len(y))
    assert min(len(p) for p in parts) >= 15


def test_dirichlet_is_deterministic_per_seed():
    y = labels()

    first = dirichlet(y, 4, 0.5, rng(1))

    assert same_parts(first, dirichlet(y, 4, 0.5, rng(1)))
    assert not same_parts(first, dirichlet(y, 4, 0.5, rng(2)))


def test_small_alpha_skews_labels_more_than_large_alpha():
    y = labels(600)

    def skew(alpha: float) -> float:
        parts = dirichlet(y, 4, alpha, rng(0), min_rows=5)
        # Mean over sites of the largest class's share of that site's rows.
        return float(np.mean([np.bincount(y[p], minlength=3).max() / len(p) for p in parts]))

    assert skew(0.1) > skew(1000.0) + 0.2


def test_min_rows_is_capped_by_the_rows_per_site():
    y = labels(20)

    parts = dirichlet(y, 4, 1.0, rng(0), min_rows=10)  # 10 > 20 // 4

    assert_exact_cover(parts, 20)
    assert min(len(p) for p in parts) >= 5


@pytest.mark.parametrize("alpha", [0.0, -1.0])
def test_dirichlet_rejects_non_positive_alpha(alpha):
    with pytest.raises(ConfigError, match="alpha"):
        dirichlet(labels(), 3, alpha, rng(0))


def test_more_sites_than_rows_is_a_config_error():
    with pytest.raises(ConfigError, match="5 sites"):
        iid(4, 5, rng(0))
    with pytest.raises(ConfigError, match="5 sites"):
        dirichlet(labels(4), 5, 1.0, rng(0))


def test_zero_sites_is_a_config_error():
    with pytest.raises(ConfigError, match="--sites"):
        iid(10, 0, rng(0))


FEATURES = ["a", "b", "c"]


def clean_frame(n: int = 400) -> pl.DataFrame:
    values = np.random.default_rng(0).uniform(1.0, 2.0, size=(n, 3))
    return pl.DataFrame(
        {
            "id": np.arange(n),
            **{f: values[:, i] for i, f in enumerate(FEATURES)},
            "y": np.arange(n) % 2,
        }
    )


def null_cells(frame: pl.DataFrame) -> int:
    return int(sum(frame.select(FEATURES).null_count().row(0)))


def test_inject_is_deterministic_per_seed():
    frame, spec = clean_frame(), DirtSpec(duplicates=0.1, missing=0.05, outliers=0.05)

    first, counts = inject(frame, FEATURES, spec, rng(5))
    again, counts_again = inject(frame, FEATURES, spec, rng(5))
    other, _ = inject(frame, FEATURES, spec, rng(6))

    assert first.equals(again)
    assert counts == counts_again
    assert not first.equals(other)


def test_inject_reports_the_duplicates_and_missing_cells_in_the_frame():
    frame = clean_frame()

    dirty, counts = inject(
        frame, FEATURES, DirtSpec(duplicates=0.1, missing=0.05, outliers=0.0), rng(1)
    )

    assert counts["duplicates"] == 40
    assert dirty.height - frame.height == counts["duplicates"]
    assert dirty["id"].n_unique() == frame.height
    deduped = dirty.unique()
    assert deduped.height == frame.height  # the extra rows are exact copies
    assert counts["missing"] > 0
    assert null_cells(deduped) == counts["missing"]
    # Copies carry their original's gaps, so the dirty frame has at least as many.
    assert null_cells(dirty) >= counts["missing"]
    assert dirty.columns == frame.columns
    assert dirty.schema == frame.schema


def test_inject_reports_the_outliers_in_the_frame():
    frame = clean_frame()

    dirty, counts = inject(
        frame,
        FEATURES,
        DirtSpec(duplicates=0.0, missing=0.0, outliers=0.1, outlier_factor=10.0),
        rng(2),
    )

    assert counts["duplicates"] == 0
    assert counts["missing"] == 0
    assert null_cells(dirty) == 0
    changed = dirty.sort("id").select(FEATURES).to_numpy() / frame.select(FEATURES).to_numpy()
    multiplied = np.isclose(changed, 10.0)
    assert np.all(multiplied | np.isclose(changed, 1.0))
    assert multiplied.sum() == counts["outliers"] > 0
    assert multiplied.sum(axis=1).max() == 1  # one feature per outlier row


def test_clean_spec_leaves_the_rows_alone():
    frame = clean_frame(50)

    dirty, counts = inject(frame, FEATURES, DirtSpec(0.0, 0.0, 0.0), rng(0))

    assert counts == {"duplicates": 0, "missing": 0, "outliers": 0}
    assert dirty.sort("id").equals(frame)


@pytest.mark.parametrize("field", ["duplicates", "missing", "outliers"])
@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_dirt_fractions_outside_unit_interval_are_config_errors(field, value):
    with pytest.raises(ConfigError, match=field):
        DirtSpec(**{field: value})


def test_quantity_skew_covers_every_row_and_small_alpha_skews_sizes():
    def spread(alpha: float) -> int:
        parts = quantity(1000, 5, alpha, rng(0), min_rows=10)
        assert_exact_cover(parts, 1000)
        assert min(len(p) for p in parts) >= 10
        return max(len(p) for p in parts) - min(len(p) for p in parts)

    assert spread(0.2) > spread(1000.0) + 200
    assert same_parts(quantity(300, 4, 0.5, rng(7)), quantity(300, 4, 0.5, rng(7)))


def test_quantity_rejects_non_positive_alpha_and_too_many_sites():
    with pytest.raises(ConfigError, match="alpha"):
        quantity(100, 3, 0.0, rng(0))
    with pytest.raises(ConfigError, match="5 sites"):
        quantity(4, 5, 1.0, rng(0))


def test_natural_gives_one_site_per_group_in_sorted_order():
    groups = np.array(["va", "cleveland", "va", "hungarian", "cleveland", "va"])

    parts, names = natural(groups)

    assert names == ["cleveland", "hungarian", "va"]
    assert [p.tolist() for p in parts] == [[1, 4], [3], [0, 2, 5]]
    with pytest.raises(ConfigError, match="3 groups"):
        natural(groups, num_sites=2)


def labelled_frame(n: int = 400) -> pl.DataFrame:
    return clean_frame(n).with_columns(y=pl.Series(np.arange(n) % 3))


def test_label_noise_swaps_labels_for_other_classes_and_hidden_labels_blank_them():
    frame = labelled_frame()
    spec = DirtSpec(duplicates=0.0, missing=0.0, outliers=0.0, label_noise=0.2, hidden_labels=0.1)

    dirty, counts = inject(frame, FEATURES, spec, rng(3), label="y", classes=[0, 1, 2])

    joined = frame.join(dirty, on="id", suffix="_dirty")
    hidden = joined.filter(pl.col("y_dirty").is_null())
    changed = joined.filter(pl.col("y_dirty").is_not_null() & (pl.col("y") != pl.col("y_dirty")))
    assert hidden.height == counts["hidden_labels"] > 0
    # A hidden label may hide a swapped one: swaps seen <= swaps made, all to other classes.
    assert 0 < changed.height <= counts["label_noise"]
    assert counts["label_noise"] - changed.height <= hidden.height
    assert set(changed["y_dirty"].to_list()) <= {0, 1, 2}
    again, counts_again = inject(frame, FEATURES, spec, rng(3), label="y", classes=[0, 1, 2])
    assert again.equals(dirty) and counts_again == counts


def test_missing_by_column_blanks_only_that_column():
    frame = clean_frame()
    spec = DirtSpec(duplicates=0.0, missing=0.0, outliers=0.0, missing_by_column={"b": 0.3})

    dirty, counts = inject(frame, FEATURES, spec, rng(4))

    nulls = dirty.select(FEATURES).null_count().row(0, named=True)
    assert nulls == {"a": 0, "b": counts["missing_by_column"], "c": 0}
    assert 80 < nulls["b"] < 160
    with pytest.raises(ConfigError, match="nosuch"):
        inject(frame, FEATURES, DirtSpec(missing_by_column={"nosuch": 0.1}), rng(0))


def test_dirt_settings_parse_and_reject_bad_ones():
    spec = DirtSpec().updated("label_noise=0.1, missing.age=0.3,duplicates=0")

    assert (spec.label_noise, spec.duplicates, spec.missing_by_column) == (0.1, 0.0, {"age": 0.3})
    for bad, needle in [("nosuch=0.1", "nosuch"), ("missing", "KEY=NUMBER"), ("missing=x", "x")]:
        with pytest.raises(ConfigError, match=needle):
            DirtSpec().updated(bad)
    with pytest.raises(ConfigError, match="missing.age"):
        DirtSpec().updated("missing.age=1.5")


def test_a_virtual_site_holding_one_class_passes_its_gate_and_trains(tmp_path):
    # Label skew gives some virtual sites a single class by design (alpha 0.5, 5 sites:
    # seeds 2, 3, 8 and 11 of the demo); their rows still teach the federation.
    dataset = breast_cancer()
    one_class = dataset.frame.filter(pl.col(dataset.label) == 1).head(40)
    config = load_site_config(write_site(tmp_path, 0, one_class, dataset, 3.0, 1e-5))

    result = prepare(config)

    assert result.gate_passed, result.gate_reasons
    site = Site(config)
    data = site.data(site.declared_spec(), seed=0)
    assert set(np.unique(data.y_train)) == {1}
    assert (len(data.y_train), len(data.y_test)) == (36, 4)  # privacy on: 0.1 held out
