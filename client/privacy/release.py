"""What a site may release besides model updates: DP moments of its features.

Each row contributes 1 to the count and, per feature, ``v = u - 1/2`` where ``u`` is
the feature on the unit scale (clipped to the declared range, so ``v`` lies in
[-1/2, 1/2]), and, when spreads are asked for, ``v**2`` (in [0, 1/4]). Adding or
removing one row moves the released vector by at most ``sqrt(1 + d/4)`` in L2, or
``sqrt(1 + d/4 + d/16)`` with the squares: centring on the range's middle halves the
bound, and the noise, of sums of ``u``. The Gaussian mechanism adds noise of
``sigma`` times that bound to every entry, and the release is recorded in the
privacy ledger as one step at sample rate 1, so the same Opacus accountant composes
it with every DP-SGD step the site takes.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from client.privacy.ledger import LedgerEntry, PrivacyLedger
from common.errors import DataError
from common.features import ONE_HOT, FeatureSpec
from common.moments import MIDDLE, Moments


def sensitivity(num_features: int, *, squares: bool = True) -> float:
    """L2 bound of one row's contribution: count, centred values and their squares."""
    return math.sqrt(1 + num_features / 4 + (num_features / 16 if squares else 0.0))


def release_moments(
    frame: pl.DataFrame,
    spec: FeatureSpec,
    noise_multiplier: float,
    min_group_size: int,
    rng: np.random.Generator,
    public: frozenset[str] = frozenset(),
    *,
    squares: bool = True,
) -> Moments:
    """The Gaussian-mechanism release of ``frame``'s unit moments (caller records it).

    Features of columns in ``public`` (the site's policy marks them so) are released
    exactly; the noise, and its L2 bound, cover the count and every other feature.
    ``squares=False`` releases the count and sums only (centres, no spreads), with
    the smaller bound.
    """
    if noise_multiplier <= 0:
        raise DataError("moments are only released with noise (noise multiplier > 0)")
    if frame.height < min_group_size:
        # The count itself is what the noise protects: the refusal does not say it.
        raise DataError(f"fewer rows than min_group_size={min_group_size}")
    exact = exact_moments(frame, spec, squares=squares)
    private = np.array([name.split(ONE_HOT, 1)[0] not in public for name in spec.features])
    noised = np.concatenate([[True], *[private] * (2 if squares else 1)])
    scale = noise_multiplier * sensitivity(int(private.sum()), squares=squares)
    noisy = exact + noised * rng.normal(0.0, scale, exact.shape)
    d = spec.num_features
    return Moments(float(noisy[0]), noisy[1 : d + 1].tolist(), noisy[d + 1 :].tolist())


def exact_moments(frame: pl.DataFrame, spec: FeatureSpec, *, squares: bool = True) -> np.ndarray:
    """The vector the release noises: count, sums of centred values (and their squares).

    A missing value counts as the middle of its range (0 once centred), a public
    constant: a site mean would let one row move every other row's contribution.
    """
    units = frame.select(spec.unit_features()).fill_null(MIDDLE)
    values = units.to_numpy().astype(float) - MIDDLE
    summed = [values, values**2] if squares else [values]
    return np.concatenate([[len(values)], *(s.sum(axis=0) for s in summed)])


def record_release(
    ledger: PrivacyLedger, noise_multiplier: float, delta: float, run_id: str, table_version: int
) -> None:
    ledger.record(
        LedgerEntry(
            noise_multiplier=noise_multiplier,
            sample_rate=1.0,
            steps=1,
            delta=delta,
            run_id=run_id,
            round=0,
            table_version=table_version,
            mechanism="gaussian-moments",
        )
    )
