"""Split a dataset's rows across virtual sites."""

from __future__ import annotations

import numpy as np

from common.errors import ConfigError

_MAX_DRAWS = 1000


def iid(num_rows: int, num_sites: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle and cut into near-equal parts."""
    _check(num_rows, num_sites)
    return [np.sort(part) for part in np.array_split(rng.permutation(num_rows), num_sites)]


def dirichlet(
    labels: np.ndarray, num_sites: int, alpha: float, rng: np.random.Generator, min_rows: int = 10
) -> list[np.ndarray]:
    """Label skew: each class is spread over the sites by Dirichlet(alpha) proportions.

    Draws again until every site holds at least ``min_rows`` rows.
    """
    if alpha <= 0:
        raise ConfigError(f"--alpha must be > 0, got {alpha}")
    _check(len(labels), num_sites)
    min_rows = min(min_rows, len(labels) // num_sites)
    for _ in range(_MAX_DRAWS):
        parts: list[list[int]] = [[] for _ in range(num_sites)]
        for cls in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == cls))
            shares = rng.dirichlet(np.full(num_sites, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
            for site, chunk in enumerate(np.split(members, cuts)):
                parts[site].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_rows:
            return [np.sort(np.array(p, dtype=int)) for p in parts]
    raise ConfigError(
        f"no Dirichlet(alpha={alpha}) split gives every one of {num_sites} sites "
        f"{min_rows} rows; raise --alpha or lower --sites"
    )


def quantity(
    num_rows: int, num_sites: int, alpha: float, rng: np.random.Generator, min_rows: int = 10
) -> list[np.ndarray]:
    """Quantity skew: site sizes follow Dirichlet(alpha) shares; labels stay mixed.

    Every site first gets ``min_rows`` rows (capped by the rows per site); the rest
    are dealt out by the drawn shares.
    """
    if alpha <= 0:
        raise ConfigError(f"--alpha must be > 0, got {alpha}")
    _check(num_rows, num_sites)
    floor = min(min_rows, num_rows // num_sites)
    shares = rng.dirichlet(np.full(num_sites, alpha))
    extra = np.floor(shares * (num_rows - floor * num_sites)).astype(int)
    extra[: num_rows - floor * num_sites - extra.sum()] += 1  # the rounding remainder
    cuts = np.cumsum(floor + extra)[:-1]
    return [np.sort(part) for part in np.split(rng.permutation(num_rows), cuts)]


def natural(groups: np.ndarray, num_sites: int | None = None) -> tuple[list[np.ndarray], list]:
    """One site per distinct value of ``groups`` (a hospital, a source file), in sorted order.

    Returns the parts and the group each one holds. ``num_sites``, when given, must
    equal the number of groups.
    """
    names, codes = np.unique(groups.astype(str), return_inverse=True)
    if num_sites and num_sites != len(names):
        raise ConfigError(
            f"--sites {num_sites}, but the natural split has {len(names)} groups; "
            "leave --sites out or match it"
        )
    return [np.flatnonzero(codes == i) for i in range(len(names))], names.tolist()


def _check(num_rows: int, num_sites: int) -> None:
    if num_sites < 1:
        raise ConfigError(f"--sites must be >= 1, got {num_sites}")
    if num_sites > num_rows:
        raise ConfigError(f"{num_sites} sites but only {num_rows} training rows")
