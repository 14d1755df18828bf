"""What a site may release besides model updates: DP moments of its features.

Each row contributes, per feature, its value ``u`` on the unit scale (clipped to the
declared range, so in [0, 1]) and ``u**2``, plus 1 to the count: adding or removing
one row moves the released vector by at most ``sqrt(1 + 2 d)`` in L2. The Gaussian
mechanism adds noise of ``sigma`` times that bound to every entry, and the release
is recorded in the privacy ledger as one step at sample rate 1, so the same Opacus
accountant composes it with every DP-SGD step the site takes.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from client.ledger import LedgerEntry, PrivacyLedger
from common.errors import DataError
from common.features import ONE_HOT, FeatureSpec
from common.moments import Moments


def sensitivity(num_features: int) -> float:
    return math.sqrt(1 + 2 * num_features)


def release_moments(
    frame: pl.DataFrame,
    spec: FeatureSpec,
    noise_multiplier: float,
    min_group_size: int,
    rng: np.random.Generator,
    public: frozenset[str] = frozenset(),
) -> Moments:
    """The Gaussian-mechanism release of ``frame``'s unit moments (caller records it).

    Features of columns in ``public`` (the site's policy marks them so) are released
    exactly; the noise, and its L2 bound, cover the count and every other feature.
    """
    if noise_multiplier <= 0:
        raise DataError("moments are only released with noise (noise multiplier > 0)")
    if frame.height < min_group_size:
        raise DataError(f"{frame.height} rows, fewer than min_group_size={min_group_size}")
    units = frame.select(spec.unit_features()).fill_null(strategy="mean").fill_null(0.5)
    values = units.to_numpy().astype(float)
    exact = np.concatenate([[len(values)], values.sum(axis=0), (values**2).sum(axis=0)])
    private = np.array([name.split(ONE_HOT, 1)[0] not in public for name in spec.features])
    noised = np.concatenate([[True], private, private])
    scale = noise_multiplier * sensitivity(int(private.sum()))
    noisy = exact + noised * rng.normal(0.0, scale, exact.shape)
    d = spec.num_features
    return Moments(float(noisy[0]), noisy[1 : d + 1].tolist(), noisy[d + 1 :].tolist())


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
