"""RDP composition minimises over orders wide enough that the optimum lies inside them."""

from __future__ import annotations

import warnings

import pytest
from opacus.accountants import RDPAccountant

from client.privacy.ledger import compose_epsilon, release_noise
from server.central_dp import composed_epsilon

DELTA = 1e-5
# A small release at high noise, the demo's training history, a long central-DP run.
HISTORIES = [
    [(20.0, 1.0, 1)],
    [(50.0, 1.0, 1)],
    [(1.1, 0.05, 300)],
    [(8.0, 1.0, 2), (1.0, 0.1, 60)],
]


def _opacus_default(history):
    accountant = RDPAccountant()
    accountant.history = list(history)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return accountant.get_epsilon(DELTA)


@pytest.mark.parametrize("history", HISTORIES)
def test_no_optimal_order_at_the_edge_and_never_looser(history):
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Optimal order")
        epsilon = compose_epsilon(history, DELTA)
    assert epsilon <= _opacus_default(history) + 1e-12


def test_a_small_budget_gets_less_noise_than_opacus_default_orders_allow():
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Optimal order")
        assert compose_epsilon([(50.0, 1.0, 1)], DELTA) < 0.75 * _opacus_default([(50.0, 1.0, 1)])
        # At Opacus's orders no noise multiplier up to 50 reaches 0.1 for one release.
        assert release_noise(0.1, DELTA) < 50


def test_central_dp_uses_the_same_orders():
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Optimal order")
        epsilon = composed_epsilon([(50.0, 3)], DELTA)
    assert epsilon == pytest.approx(compose_epsilon([(50.0, 1.0, 3)], DELTA))
    assert epsilon < _opacus_default([(50.0, 1.0, 3)])
