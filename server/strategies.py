"""Assemble one of Flower's own strategies from the run config."""

from __future__ import annotations

from typing import Any

from flwr.serverapp.strategy import (
    Bulyan,
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    FedYogi,
    Krum,
    Strategy,
)

from common.run_config import RunConfig
from server.central_dp import inner_strategy, with_central_dp
from server.metrics import weighted_mean_ignoring_nan

STRATEGIES = {
    "fedavg": FedAvg,
    "fedprox": FedProx,
    "fedadam": FedAdam,
    "fedyogi": FedYogi,
    "fedmedian": FedMedian,
    "fedtrimmedavg": FedTrimmedAvg,
    "krum": Krum,
    "bulyan": Bulyan,
}


def build_strategy(config: RunConfig, sites_per_round: int) -> Strategy:
    """The strategy ``config.strategy`` names, sampling and weighting as configured.

    ``sites_per_round`` (the sites asked to train each round) sizes the noise of a
    central-DP wrapper when ``config.central_dp`` asks for one.
    """
    common = {
        "fraction_train": config.fraction_train,
        "min_train_nodes": config.min_train_sites,
        "min_evaluate_nodes": config.min_train_sites,
        "min_available_nodes": config.min_train_sites,
        "evaluate_metrics_aggr_fn": weighted_mean_ignoring_nan,
    }
    per_strategy: dict[str, dict[str, Any]] = {
        "fedprox": {"proximal_mu": config.proximal_mu},
        "fedadam": {"eta": config.server_learning_rate, "eta_l": config.learning_rate},
        "fedyogi": {"eta": config.server_learning_rate, "eta_l": config.learning_rate},
        "krum": {"num_malicious_nodes": config.num_malicious_sites},
        "bulyan": {"num_malicious_nodes": config.num_malicious_sites},
    }
    extra = per_strategy.get(config.strategy, {})
    return with_central_dp(STRATEGIES[config.strategy](**common, **extra), config, sites_per_round)


# Attributes in which Flower's adaptive strategies carry state from round to round.
_CARRIED_STATE = ("m_t", "v_t")


def strategy_state(strategy: Any) -> dict[str, Any]:
    """What an adaptive strategy carries from round to round, checkpointed with the model."""
    inner = inner_strategy(strategy)
    return {n: getattr(inner, n) for n in _CARRIED_STATE if getattr(inner, n, None) is not None}


def restore_strategy_state(strategy: Any, state: dict[str, Any]) -> None:
    """Give ``strategy`` back what :func:`strategy_state` took (a resumed run)."""
    for name, value in state.items():
        setattr(inner_strategy(strategy), name, value)
