"""Central (site-level) differential privacy: Flower's fixed-clipping wrappers.

A wrapper clips each site's update to ``central_dp_clipping_norm`` (on the server,
or at the site with ``client.federation.mods.clip_update_when_asked``) and adds Gaussian noise
of ``central_dp_noise_multiplier x norm / sites`` to the aggregate. This protects a
whole site's participation; the sites' own DP-SGD still protects their rows.

That noise is calibrated to a mean in which every site weighs ``1 / sites``. FedAvg
weights by example counts, which would give the largest site a weight, and so a
sensitivity, several times larger than the noise assumes (docs/privacy/central-dp.md).
So with central DP on, the inner FedAvg weighs every clipped update equally, and only
strategies whose aggregate is that mean (FedAvg, FedProx) are accepted.

A round in which only some of the sites asked answer is accounted with the smaller
noise multiplier it really had (:func:`round_noise_multiplier`). No amplification by
sampling is claimed (Flower samples a fixed number of sites, not by Poisson sampling,
and its own accountant refuses amplification for these wrappers), so the site-level
guarantee is the rounds' Gaussian mechanisms composed by Opacus's RDP accountant.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    Strategy,
)

from common.config import CENTRAL_DP_STRATEGIES, RunConfig
from common.errors import ConfigError

# The metric every train reply gets (value 1) and the inner FedAvg weighs by under
# central DP: equal weights, the ones the wrappers' noise is calibrated to.
EQUAL_WEIGHT_KEY = "central-dp-weight"

# Sampling rate of each release in the accountant: no amplification is claimed.
SAMPLE_RATE = 1.0


class _EqualWeights:
    """Mixin for a fixed-clipping wrapper: the inner FedAvg weighs each update equally."""

    strategy: Strategy

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        for reply in replies:
            if not reply.has_error():
                for record in reply.content.metric_records.values():
                    record[EQUAL_WEIGHT_KEY] = 1.0
        inner = self.strategy
        assert isinstance(inner, FedAvg)  # with_central_dp accepts nothing else
        # Train replies only: evaluation metrics keep their example-count weights.
        inner.weighted_by_key, by_examples = EQUAL_WEIGHT_KEY, inner.weighted_by_key
        try:
            arrays, metrics = super().aggregate_train(server_round, replies)  # type: ignore[misc]
        finally:
            inner.weighted_by_key = by_examples
        if metrics is not None:
            metrics.pop(EQUAL_WEIGHT_KEY, None)
        return arrays, metrics


class ServerSideEqualWeights(_EqualWeights, DifferentialPrivacyServerSideFixedClipping):
    """Flower's server-side fixed clipping over an equally weighted FedAvg."""


class ClientSideEqualWeights(_EqualWeights, DifferentialPrivacyClientSideFixedClipping):
    """Flower's client-side fixed clipping over an equally weighted FedAvg."""


WRAPPERS = {"server": ServerSideEqualWeights, "client": ClientSideEqualWeights}


def check_strategy(config: RunConfig) -> None:
    """Raise :class:`ConfigError` when central DP is on over an unbounded strategy."""
    if config.central_dp != "off" and config.strategy not in CENTRAL_DP_STRATEGIES:
        raise ConfigError(unbounded_reason(config.strategy))


def unbounded_reason(strategy: str) -> str:
    """Why central DP refuses ``strategy`` (one line)."""
    return (
        f"central-dp cannot wrap strategy '{strategy}': its aggregate is not the equally "
        "weighted mean of clipped updates, so no noise of sigma*C/sites bounds one site's "
        f"influence; use one of {', '.join(CENTRAL_DP_STRATEGIES)}"
    )


def with_central_dp(strategy: Strategy, config: RunConfig, sites_per_round: int) -> Strategy:
    """``strategy`` wrapped as ``config.central_dp`` asks ('off' returns it as is)."""
    if config.central_dp == "off":
        return strategy
    check_strategy(config)
    if type(strategy).aggregate_train is not FedAvg.aggregate_train:
        raise ConfigError(unbounded_reason(type(strategy).__name__))
    return WRAPPERS[config.central_dp](
        strategy,
        noise_multiplier=config.central_dp_noise_multiplier,
        clipping_norm=config.central_dp_clipping_norm,
        num_sampled_clients=sites_per_round,
    )


def round_noise_multiplier(config: RunConfig, expected: int, answered: int) -> float:
    """The noise multiplier a round really had when ``answered`` of ``expected`` sites replied.

    The noise is sized for ``expected`` sites (sigma*C/expected) but the equal-weight
    mean is over those that answered, where one site moves it by C/answered.
    """
    return config.central_dp_noise_multiplier * min(answered, expected) / expected


def worst_noise_multiplier(config: RunConfig, expected: int) -> float:
    """The least noise multiplier a released round can have: only ``min_train_sites`` answered."""
    return round_noise_multiplier(config, expected, min(config.min_train_sites, expected))


def site_level_epsilon(config: RunConfig, rounds: int) -> float:
    """Epsilon (at ``central_dp_delta``) of one site's participation in ``rounds`` rounds."""
    return composed_epsilon([(config.central_dp_noise_multiplier, rounds)], config.central_dp_delta)


def composed_epsilon(releases: list[tuple[float, int]], delta: float) -> float:
    """Epsilon at ``delta`` of ``(noise multiplier, rounds)`` releases composed (Opacus RDP)."""
    from opacus.accountants import RDPAccountant  # a second to import: only runs that use it

    releases = [(sigma, rounds) for sigma, rounds in releases if rounds > 0]
    if not releases:
        return 0.0
    accountant = RDPAccountant()
    accountant.history = [(sigma, SAMPLE_RATE, rounds) for sigma, rounds in releases]
    return float(accountant.get_epsilon(delta))


def inner_strategy(strategy: Strategy) -> Strategy:
    """The aggregating strategy under any DP wrapper (where its state lives)."""
    return getattr(strategy, "strategy", strategy)
