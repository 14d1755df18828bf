"""Central DP: the epsilon reported is the one Flower's wrappers give, whatever the site sizes.

The weights and the noise are measured on the real wrappers (Flower's fixed clipping
over the FedAvg ``build_strategy`` makes), then epsilon is computed from them
independently with Opacus's RDP accountant: noise std over the largest weight times
the clipping norm is the effective noise multiplier; every site takes part in every
round, so the sampling rate (sites per round over sites) is 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from opacus.accountants import RDPAccountant

from common.config import CENTRAL_DP_STRATEGIES, RunConfig
from common.errors import ConfigError
from server.central_dp import site_level_epsilon, with_central_dp
from server.strategies import STRATEGIES, build_strategy

SIZES = [40, 60, 80, 120, 155]  # unequal sites: FedAvg would weigh the last 155/455
ROUNDS, DELTA = 15, 1e-5


@pytest.fixture(autouse=True)
def task_identity(monkeypatch):
    """Messages built outside a ServerApp need the ids Flower sets inside one."""
    from flwr.supercore.task_identity import TaskIdentity

    for name in ("_task_id", "_run_id", "_node_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)


def reply(update: np.ndarray, num_examples: int) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord([update.astype(np.float64)]),
            "metrics": MetricRecord({"num-examples": num_examples, "train-loss": 1.0}),
        }
    )
    return Message(content, dst_node_id=1, message_type="train")


def aggregate(strategy, updates: list[np.ndarray]) -> np.ndarray:
    if hasattr(strategy, "current_arrays"):  # server-side clipping: updates are from zeros
        strategy.current_arrays = ArrayRecord([np.zeros_like(updates[0])])
    replies = [reply(u, n) for u, n in zip(updates, SIZES)]
    arrays, _ = strategy.aggregate_train(1, replies)
    return arrays.to_numpy_ndarrays()[0]


def config(where: str, sigma: float) -> RunConfig:
    return RunConfig(central_dp=where, central_dp_noise_multiplier=sigma, central_dp_delta=DELTA)


def independent_epsilon(noise_multiplier: float) -> float:
    accountant = RDPAccountant()
    sampling_rate = len(SIZES) / len(SIZES)  # every site, every round
    accountant.history = [(noise_multiplier, sampling_rate, ROUNDS)]
    return accountant.get_epsilon(DELTA)


@pytest.mark.parametrize("where", ["server", "client"])
def test_reported_epsilon_equals_the_wrappers_real_epsilon_for_unequal_sites(where):
    sites = len(SIZES)
    # Weights: site i sends the unit vector e_i (norm 1 = the clipping norm); with
    # negligible noise the aggregate's i-th entry is the weight FedAvg gives site i.
    unit = [np.eye(sites)[i] for i in range(sites)]
    weights = aggregate(build_strategy(config(where, 1e-9), sites), unit)
    assert weights == pytest.approx([1 / sites] * sites, abs=1e-6)
    # Noise: (nearly) zero updates, many coordinates; its std is what the wrapper adds.
    # Not exactly zero: Flower's server-side clipping divides by the update's norm.
    zeros = [np.full(200_000, 1e-12)] * sites
    noise = aggregate(build_strategy(config(where, 1.0), sites), zeros)
    effective = float(noise.std()) / (max(weights) * 1.0)
    assert effective == pytest.approx(1.0, rel=0.01)

    reported = site_level_epsilon(config(where, 1.0), ROUNDS)
    assert reported == pytest.approx(independent_epsilon(effective), rel=0.02)
    assert reported == pytest.approx(24.8, abs=0.1)


def test_weighting_by_example_counts_would_double_the_real_epsilon():
    """What the equal weights fix: Flower's wrapper over a plain FedAvg."""
    from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg

    sites = len(SIZES)
    plain = DifferentialPrivacyClientSideFixedClipping(FedAvg(), 1e-9, 1.0, sites)
    weights = aggregate(plain, [np.eye(sites)[i] for i in range(sites)])
    assert max(weights) == pytest.approx(155 / sum(SIZES), rel=1e-6)
    # Same noise (sigma*C/sites) over the largest weight: a smaller effective multiplier.
    effective = (1.0 / sites) / max(weights)
    assert independent_epsilon(effective) == pytest.approx(51.8, abs=0.5)
    assert independent_epsilon(effective) > 2 * site_level_epsilon(config("client", 1.0), ROUNDS)


def test_evaluation_metrics_keep_their_example_count_weights():
    strategy = build_strategy(config("server", 1.0), 5)
    replies = [reply(np.eye(5)[0], n) for n in SIZES]
    strategy.current_arrays = ArrayRecord([np.zeros(5)])
    _, metrics = strategy.aggregate_train(1, replies)
    assert strategy.strategy.weighted_by_key == "num-examples"
    assert set(metrics) == {"num-examples", "train-loss"}  # the equal-weight key stays inside


@pytest.mark.parametrize("name", sorted(set(STRATEGIES) - set(CENTRAL_DP_STRATEGIES)))
def test_central_dp_refuses_strategies_with_unbounded_sensitivity(name):
    with pytest.raises(ConfigError, match=f"cannot wrap strategy '{name}'"):
        RunConfig.from_flower({"central-dp": "server", "strategy": name})
    assert RunConfig.from_flower({"central-dp": "off", "strategy": name}).strategy == name


def test_with_central_dp_refuses_a_strategy_that_aggregates_otherwise():
    from flwr.serverapp.strategy import FedAdam

    with pytest.raises(ConfigError, match="FedAdam"):
        with_central_dp(FedAdam(), config("server", 1.0), 3)


@pytest.mark.parametrize("name", CENTRAL_DP_STRATEGIES)
def test_central_dp_wraps_the_strategies_it_bounds(name):
    run = RunConfig(central_dp="client", strategy=name)
    assert build_strategy(run, 3).strategy.__class__ is STRATEGIES[name]
