"""Parsers of the options ``fedlife-sim run`` and ``fedlife-sim sweep`` share."""

from __future__ import annotations

from common.errors import ConfigError
from simulations.data.dirt import DirtSpec


def parse_epsilon(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--epsilon must be a number > 0 or 'none', got '{text}'") from None


def default_sites(sites: int | None, partition: str, default: int) -> int:
    """``sites`` if given, else ``default``, or with a natural partition 0: one site per group."""
    if sites is not None:
        return sites
    return 0 if partition.partition(":")[0] == "natural" else default


def parse_site_dirt(items: list[str], base: DirtSpec) -> dict[str, DirtSpec]:
    """``["site-002:label_noise=0.2,hidden_labels=0.1", ...]`` -> site -> spec."""
    found: dict[str, DirtSpec] = {}
    for item in items:
        site, sep, settings = item.partition(":")
        if not sep or not site.strip():
            raise ConfigError(f"--site-dirt '{item}' must be SITE:KEY=VALUE,...")
        found[site.strip()] = found.get(site.strip(), base).updated(settings)
    return found
