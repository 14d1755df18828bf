"""Central (site-level) differential privacy: Flower's fixed-clipping wrappers.

A wrapper clips each site's update to ``central_dp_clipping_norm`` C (on the server,
or at the site with ``client.federation.mods.clip_update_when_asked``) and adds Gaussian
noise of ``central_dp_noise_multiplier x C / m`` to the aggregate, m the sites it was
told to expect. This protects a whole site's participation; the sites' own DP-SGD
still protects their rows.

That noise is right only for a mean with equal weights, where one site moves the
aggregate by at most C / m. FedAvg weights by example counts, so a site with most of
the rows moved it by up to C and the reported epsilon was several times too small
(sizes [20, 20, 20, 20, 375], 15 rounds at sigma 1: 24.8 reported, about 202 real).
With central DP on, the aggregate therefore weights every site equally, and a round
in which fewer than m sites answered counts with the smaller noise multiplier it
really had (sigma x answered / m). Nothing amplifies by sampling: every site takes
part in every round it is asked to. The rounds compose in Opacus's RDP accountant.
"""

from __future__ import annotations

from flwr.app import Message
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    Strategy,
)

from common import keys
from common.rdp_orders import RDP_ORDERS
from common.run_config import RunConfig

WRAPPERS = {
    "server": DifferentialPrivacyServerSideFixedClipping,
    "client": DifferentialPrivacyClientSideFixedClipping,
}


def with_central_dp(strategy: Strategy, config: RunConfig, sites_per_round: int) -> Strategy:
    """``strategy`` wrapped as ``config.central_dp`` asks ('off' returns it as is)."""
    if config.central_dp == "off":
        return strategy
    return WRAPPERS[config.central_dp](
        strategy,
        noise_multiplier=config.central_dp_noise_multiplier,
        clipping_norm=config.central_dp_clipping_norm,
        num_sampled_clients=sites_per_round,
    )


def with_equal_weights(updates: list[Message]) -> list[Message]:
    """The sites' updates, each weighing 1 in FedAvg's mean.

    FedAvg weights by ``num-examples``; the round's lineage has already recorded the
    counts the sites sent, so the aggregate may count each site once.
    """
    for update in updates:
        # METRICS is a MetricRecord; indexing the RecordDict widens it to any record.
        update.content[keys.METRICS][keys.NUM_EXAMPLES] = 1  # type: ignore[assignment]
    return updates


def round_noise_multiplier(config: RunConfig, expected: int, answered: int) -> float:
    """The noise multiplier a round really had when ``answered`` of ``expected`` sites replied.

    The noise is sized for ``expected`` sites (sigma*C/expected) but the equal-weight
    mean is over those that answered, where one site moves it by C/answered.
    """
    return config.central_dp_noise_multiplier * min(answered, expected) / expected


def worst_noise_multiplier(config: RunConfig, expected: int) -> float:
    """The least noise multiplier a released round can have: only ``min_train_sites`` answered."""
    return round_noise_multiplier(config, expected, min(config.min_train_sites, expected))


def site_level_epsilon(config: RunConfig, noise_multipliers: list[float]) -> float:
    """Epsilon (at ``central_dp_delta``) of one site taking part in rounds of these noises."""
    return composed_epsilon([(sigma, 1) for sigma in noise_multipliers], config.central_dp_delta)


def composed_epsilon(releases: list[tuple[float, int]], delta: float) -> float:
    """Epsilon at ``delta`` of ``(noise multiplier, rounds)`` releases composed (Opacus RDP).

    No amplification by sampling is claimed: every site asked takes part in the round.
    """
    from opacus.accountants import RDPAccountant  # a second to import: only runs that use it

    releases = [(sigma, rounds) for sigma, rounds in releases if rounds > 0]
    if not releases:
        return 0.0
    accountant = RDPAccountant()
    accountant.history = [(sigma, 1.0, rounds) for sigma, rounds in releases]
    return float(accountant.get_epsilon(delta, alphas=list(RDP_ORDERS)))


def inner_strategy(strategy: Strategy) -> Strategy:
    """The aggregating strategy under any DP wrapper (where its state lives)."""
    return getattr(strategy, "strategy", strategy)
