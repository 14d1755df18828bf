"""DP release of feature moments: noise calibrated, cost recorded, merge exact."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from opacus.accountants import RDPAccountant

from client.federation.site_replies import moments_noise
from client.privacy.ledger import LedgerEntry, PrivacyLedger, compose_epsilon, release_noise
from client.privacy.release import record_release, release_moments, sensitivity
from client.site import Site
from common.errors import BudgetExceededError, DataError
from common.features import FeatureSpec
from common.moments import MIN_SPREAD, RANGE_SPREAD, merge_moments

SPEC = FeatureSpec(["a", "b"], [0.0, 0.0], [10.0, 100.0], "y", ["0", "1"])


def frame(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"a": rng.uniform(0, 10, n), "b": rng.uniform(0, 100, n), "y": [0] * n})


def test_release_is_the_exact_moments_plus_calibrated_noise():
    data = frame(500)
    exact = data.select(pl.col("a") / 10, pl.col("b") / 100).to_numpy() - 0.5
    draws = [release_moments(data, SPEC, 2.0, 10, np.random.default_rng(s)) for s in range(300)]

    counts = np.array([m.count for m in draws])
    sums = np.array([m.sums for m in draws])
    assert abs(counts.mean() - 500) < 0.5 * 2.0 * sensitivity(2)
    assert np.allclose(sums.mean(axis=0), exact.sum(axis=0), atol=1.0)
    assert counts.std() == pytest.approx(2.0 * sensitivity(2), rel=0.15)


def test_too_few_rows_or_no_noise_release_nothing():
    with pytest.raises(DataError, match="min_group_size"):
        release_moments(frame(5), SPEC, 2.0, 10, np.random.default_rng(0))
    with pytest.raises(DataError, match="noise"):
        release_moments(frame(50), SPEC, 0.0, 10, np.random.default_rng(0))


def test_release_cost_composes_with_dp_sgd_in_the_ledger(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    record_release(ledger, 10.0, 1e-5, "run", 0)
    only_release = ledger.epsilon(1e-5)

    reference = RDPAccountant()
    reference.history = [(10.0, 1.0, 1)]
    assert only_release == pytest.approx(reference.get_epsilon(1e-5))
    assert ledger.epsilon(1e-5, [(1.0, 0.1, 100)]) > only_release


def test_release_noise_is_the_least_that_fits_its_allowance():
    sigma = release_noise(0.75, 1e-5)

    assert compose_epsilon([(sigma, 1.0, 1)], 1e-5) <= 0.75
    assert compose_epsilon([(0.99 * sigma, 1.0, 1)], 1e-5) > 0.75
    assert release_noise(0.75, 1e-5, "prv") < sigma  # the tighter accountant needs less


@pytest.mark.parametrize("allowance", [0.0, -0.5, 1e-3])
def test_an_allowance_no_release_fits_is_a_budget_refusal(allowance):
    with pytest.raises(BudgetExceededError, match="release"):
        release_noise(allowance, 1e-5)


def site_with_privacy(tmp_path, privacy: str) -> Site:
    tmp_path.mkdir()
    toml = tmp_path / "site.toml"
    toml.write_text(
        '[site]\nname = "clinic"\nraw = "raw.csv"\n'
        '[schema.columns.y]\ntype = "int"\nrole = "label"\nvalues = ["0", "1"]\n'
        f"[privacy]\nepsilon_budget = 3.0\n{privacy}\n"
    )
    return Site.from_path(toml)


def test_a_site_releases_at_a_share_of_the_budget_it_has_left(tmp_path):
    fresh = site_with_privacy(tmp_path / "fresh", "")
    assert moments_noise(fresh) == release_noise(0.25 * 3.0, 1e-5)

    spending = site_with_privacy(tmp_path / "spent", "moments_budget_share = 0.5")
    spending.ledger.record(LedgerEntry(3.0, 0.1, 50, 1e-5, "earlier", 1, 0))
    left = 3.0 - spending.ledger.epsilon(1e-5)
    assert 1.5 < left < 2.5
    assert moments_noise(spending) == release_noise(0.5 * left, 1e-5)

    fixed = site_with_privacy(tmp_path / "fixed", "moments_noise_multiplier = 7.0")
    assert moments_noise(fixed) == 7.0


def noiseless_release(part: pl.DataFrame, *, squares: bool = True) -> dict:
    offsets = part.select(SPEC.unit_features()).to_numpy() - 0.5
    return {
        "count": len(offsets),
        "sums": offsets.sum(0).tolist(),
        "squares": (offsets**2).sum(0).tolist() if squares else [],
    }


def test_merge_recovers_mean_and_spread_from_noiseless_releases():
    parts = [frame(200, 1), frame(300, 2)]
    centers, spreads = merge_moments([noiseless_release(part) for part in parts])

    pooled = pl.concat(parts).select(SPEC.unit_features()).to_numpy()
    assert np.allclose(centers, pooled.mean(0))
    assert np.allclose(spreads, pooled.std(0))


def test_merge_of_no_release_says_so():
    with pytest.raises(DataError, match="no site released feature moments"):
        merge_moments([])


def test_merge_floors_a_negative_variance():
    centers, spreads = merge_moments([{"count": 10, "sums": [5.0], "squares": [0.0]}])
    assert centers == [1.0] and spreads == [MIN_SPREAD]


def test_a_centers_release_has_no_squares_and_less_noise():
    data = frame(500)
    draws = [
        release_moments(data, SPEC, 2.0, 10, np.random.default_rng(s), squares=False)
        for s in range(300)
    ]

    assert all(m.squares == [] for m in draws)
    assert sensitivity(2, squares=False) < sensitivity(2)
    counts = np.array([m.count for m in draws])
    assert counts.std() == pytest.approx(2.0 * sensitivity(2, squares=False), rel=0.15)


def test_centers_shift_features_to_the_federation_mean_and_keep_the_range_width():
    # Both features crowd the low end of their public ranges, as skewed measurements do.
    parts = [frame(n, seed).with_columns(pl.col("a", "b") / 4) for n, seed in ((200, 1), (300, 2))]
    centers, spreads = merge_moments([noiseless_release(p, squares=False) for p in parts])
    assert spreads == [RANGE_SPREAD, RANGE_SPREAD]

    pooled = pl.concat(parts)
    centered, _ = SPEC.with_moments(centers, spreads).encode(pooled)
    ranged, _ = SPEC.encode(pooled)

    assert np.allclose(centered.mean(0), 0, atol=1e-5)
    assert np.all(ranged.mean(0) < -0.3)
    assert np.allclose(centered.std(0), ranged.std(0), atol=1e-5)


def test_standardised_spec_centres_features():
    data = frame(400)
    units = data.select(SPEC.unit_features()).to_numpy()
    spec = SPEC.with_moments(units.mean(0).tolist(), units.std(0).tolist())

    x, _ = spec.encode(data)

    assert np.allclose(x.mean(0), 0, atol=1e-5)
    assert np.allclose(x.std(0), 1, atol=1e-3)


def test_public_columns_are_released_exactly_and_the_rest_with_noise():
    data = frame(200)
    exact = (data.select(pl.col("a") / 10, pl.col("b") / 100).to_numpy() - 0.5).sum(axis=0)

    moments = release_moments(data, SPEC, 2.0, 10, np.random.default_rng(0), frozenset({"a"}))

    assert moments.sums[0] == pytest.approx(exact[0])
    assert moments.sums[1] != pytest.approx(exact[1], abs=1e-6)
    assert moments.count != 200
