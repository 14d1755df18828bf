"""Feature moments that sites release with DP and the server merges.

A site releases a noisy count and, per feature, noisy sums of ``u`` and ``u**2``
where ``u`` is the feature on its unit scale (see ``FeatureSpec.unit_features``).
The server adds the sites' releases and turns them into the federation-wide centers
and spreads every site then standardises with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.errors import DataError

MIN_SPREAD = 0.02


@dataclass(frozen=True)
class Moments:
    """Noisy count, and per-feature sums of u and u**2 (u on the unit scale)."""

    count: float
    sums: list[float]
    squares: list[float]

    def to_dict(self) -> dict:
        return {"count": self.count, "sums": self.sums, "squares": self.squares}


def merge_moments(releases: list[dict]) -> tuple[list[float], list[float]]:
    """Federation-wide centers and spreads (unit scale) from the sites' releases."""
    count = sum(r["count"] for r in releases)
    if count <= 1:
        raise DataError("released moments cover too few rows to standardise")
    sums = np.sum([r["sums"] for r in releases], axis=0) / count
    squares = np.sum([r["squares"] for r in releases], axis=0) / count
    centers = np.clip(sums, 0.0, 1.0)
    # Noise can push the variance below zero; a floor keeps features finite.
    spreads = np.sqrt(np.clip(squares - centers**2, MIN_SPREAD**2, None))
    return centers.tolist(), spreads.tolist()
