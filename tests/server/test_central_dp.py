"""Central DP reports the epsilon it gives: equal weights, real noise, no unbounded strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

from common import keys
from common.errors import ConfigError
from common.run_config import RunConfig
from common.wire.delivered import delivered
from server.central_dp import round_noise_multiplier, site_level_epsilon, with_equal_weights
from server.strategies import build_strategy

CLIP, SIZES = 1.0, [20, 20, 20, 20, 375]


def _reply(update: np.ndarray, num_examples: int, node: int) -> Message:
    content = RecordDict(
        {
            keys.ARRAYS: ArrayRecord({"w": torch.tensor(update, dtype=torch.float32)}),
            keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: num_examples}),
        }
    )
    return Message(content, reply_to=delivered(RecordDict(), message_type="train", node=node))


def _aggregate(updates: list[np.ndarray]) -> np.ndarray:
    """The server-side clipped aggregate of these updates from a zero model, noise ~0."""
    config = RunConfig.from_flower(
        {
            "central_dp": "server",
            "central_dp_clipping_norm": CLIP,
            "central_dp_noise_multiplier": 1e-9,
        }
    )
    strategy = build_strategy(config, len(updates))
    strategy.current_arrays = ArrayRecord({"w": torch.zeros(3)})  # as configure_train sets
    replies = [_reply(u, n, i + 1) for i, (u, n) in enumerate(zip(updates, SIZES))]
    arrays, _ = strategy.aggregate_train(1, with_equal_weights(replies))
    return arrays.to_torch_state_dict()["w"].numpy()


def test_one_site_moves_the_aggregate_by_at_most_clip_over_sites_whatever_its_size():
    rng = np.random.default_rng(0)
    base = [rng.normal(size=3) for _ in SIZES]
    changed = [*base[:-1], -10 * base[-1]]  # the site with 375 of 455 rows
    moved = np.linalg.norm(_aggregate(changed) - _aggregate(base))
    # Weighted by counts it could move by up to 2 * CLIP * 375 / 455.
    assert moved <= 2 * CLIP / len(SIZES) + 1e-4


def _independent_epsilon(sigmas: list[float], delta: float) -> float:
    """The Gaussian mechanism's RDP (alpha / 2 sigma^2 per release), Balle et al.'s conversion."""
    orders = np.linspace(1.01, 512, 200_000)
    rdp = sum(orders / (2 * s**2) for s in sigmas)
    eps = rdp + np.log((orders - 1) / orders) - (np.log(delta) + np.log(orders)) / (orders - 1)
    return float(eps.min())


def test_epsilon_equals_an_independent_computation_including_short_rounds():
    config = RunConfig(central_dp="server", central_dp_noise_multiplier=1.0)
    sigmas = [1.0] * 14 + [round_noise_multiplier(config, expected=5, answered=3)]
    assert sigmas[-1] == pytest.approx(0.6)
    assert site_level_epsilon(config, sigmas) == pytest.approx(
        _independent_epsilon(sigmas, config.central_dp_delta), rel=2e-3
    )


@pytest.mark.parametrize("strategy", ["fedmedian", "fedtrimmedavg", "krum", "bulyan", "fedadam"])
def test_central_dp_refuses_strategies_without_a_sensitivity_bound(strategy):
    with pytest.raises(ConfigError, match="bounds no site.s influence"):
        RunConfig.from_flower({"central_dp": "server", "strategy": strategy})
