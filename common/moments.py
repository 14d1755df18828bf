"""Feature moments that sites release with DP and the server merges.

A site releases a noisy count and, per feature, noisy sums of ``v = u - 1/2`` and,
when spreads are asked for, of ``v**2``, where ``u`` is the feature on its unit scale
(see ``FeatureSpec.unit_features``). The server adds the sites' releases and turns
them into the federation-wide centers and spreads every site then standardises with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from common.errors import DataError

MIN_SPREAD = 0.02
# The middle of the unit scale: sites release sums of u - MIDDLE, the server adds it back.
MIDDLE = 0.5
# Half the unit range: dividing by it maps a feature's public range to a width of 2,
# as 'range' scaling does; releases without squares keep it as every spread.
RANGE_SPREAD = 0.5


@dataclass(frozen=True)
class Moments:
    """Noisy count, and per-feature sums of v and v**2 (v = u - 1/2; no squares: [])."""

    count: float
    sums: list[float]
    squares: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"count": self.count, "sums": self.sums, "squares": self.squares}


def merge_moments(releases: list[dict]) -> tuple[list[float], list[float]]:
    """Federation-wide centers and spreads (unit scale) from the sites' releases.

    Releases without squares give centers only; every spread is then ``RANGE_SPREAD``.
    """
    if not releases:
        raise DataError("no site released feature moments")
    releases = [_checked(r) for r in releases]
    if len({len(r["sums"]) for r in releases}) > 1:
        raise DataError("released moments disagree on the number of features")
    count = sum(r["count"] for r in releases)
    if count <= 1:
        raise DataError("released moments cover too few rows to standardise")
    offsets = np.sum([r["sums"] for r in releases], axis=0) / count
    centers = np.clip(MIDDLE + offsets, 0.0, 1.0)
    if not all(len(r.get("squares", [])) for r in releases):
        return centers.tolist(), [RANGE_SPREAD] * len(centers)
    squares = np.sum([r["squares"] for r in releases], axis=0) / count
    # Noise can push the variance below zero; a floor keeps features finite.
    variances = squares - (centers - MIDDLE) ** 2
    spreads = np.sqrt(np.clip(variances, MIN_SPREAD**2, None))
    return centers.tolist(), spreads.tolist()


def _checked(release: object) -> dict:
    """A release as its wire contract allows it (finite numbers, squares fit sums)."""
    from pydantic import ValidationError

    from common.wire.base import describe
    from common.wire.messages import MomentsRecord

    try:
        return MomentsRecord.model_validate(release).model_dump(by_alias=True)
    except ValidationError as error:
        raise DataError(f"malformed moments release: {describe(error)}") from None
