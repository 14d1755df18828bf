"""Central (site-level) differential privacy: Flower's fixed-clipping wrappers.

A wrapper clips each site's update to ``central_dp_clipping_norm`` (on the server,
or at the site with ``client.federation.mods.clip_update_when_asked``) and adds Gaussian noise
of ``central_dp_noise_multiplier x norm / sites`` to the aggregate. This protects a
whole site's participation; the sites' own DP-SGD still protects their rows.

Every site takes part in every round it is asked to and nothing amplifies by
sampling, so the site-level guarantee after ``rounds`` releases is the Gaussian
mechanism composed ``rounds`` times, accounted by Opacus's RDP accountant.
"""

from __future__ import annotations

from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    Strategy,
)

from common.config import RunConfig

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


def site_level_epsilon(config: RunConfig, rounds: int) -> float:
    """Epsilon (at ``central_dp_delta``) of one site's participation in ``rounds`` rounds."""
    from opacus.accountants import RDPAccountant  # a second to import: only runs that use it

    accountant = RDPAccountant()
    accountant.history = [(config.central_dp_noise_multiplier, 1.0, rounds)]
    return float(accountant.get_epsilon(config.central_dp_delta))


def inner_strategy(strategy: Strategy) -> Strategy:
    """The aggregating strategy under any DP wrapper (where its state lives)."""
    return getattr(strategy, "strategy", strategy)
