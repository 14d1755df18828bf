"""A site that poisons its updates: robust strategies resist it, FedAvg does not.

Apart from the budget tests so that the test runners can run the two modules side
by side (three simulations here).
"""

from __future__ import annotations

import pytest

from simulations.runner import run
from simulations.spec import SimulationSpec
from tests.e2e.test_budget import rounds_of, write_sites

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_robust_aggregation_resists_a_poisoning_site_that_fedavg_does_not(private_env, tmp_path):
    """Site-001 sends its update multiplied by -100; FedAvg follows it, FedMedian and
    Krum do not."""
    write_sites(tmp_path / "fed", sites=5, partition="iid", epsilon=None)
    base = {
        "sites": 5,
        "rounds": 3,
        "epsilon": None,
        "sites_dir": str(tmp_path / "fed" / "sites"),
    }
    poisoned = {"poisoned_sites": ("site-001",), "poison_factor": -100.0}

    def accuracy(name: str, **spec) -> float:
        summary = run(SimulationSpec(**base, run_dir=str(tmp_path / name), **spec))
        assert summary["rounds"] == 3
        assert len(rounds_of(tmp_path / name)[-1]["participants"]) == 5
        return summary["test_accuracy"]

    fedavg = accuracy("fedavg", **poisoned)
    median = accuracy("median", strategy="fedmedian", **poisoned)
    krum = accuracy("krum", strategy="krum", run_options={"num_malicious_sites": 1}, **poisoned)

    # No unpoisoned baseline run: the robust strategies reach what three clean rounds
    # of this data reach (>= 0.85), FedAvg falls far below them.
    measured = {"fedavg": fedavg, "fedmedian": median, "krum": krum}
    print(f"test accuracy: {measured}")
    assert median >= 0.85 and krum >= 0.85, measured
    assert fedavg <= min(median, krum) - 0.25, measured
