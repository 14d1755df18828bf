"""How many CPUs (Ray workers) a simulation's private Ray instance offers."""

from __future__ import annotations

import os

import pytest

from common.errors import ConfigError
from simulations.ray_runtime import simulation_cpus


def test_all_of_the_machines_cpus_unless_the_setting_says_fewer(monkeypatch):
    monkeypatch.delenv("FEDLIFE_SIM_CPUS", raising=False)
    assert simulation_cpus() == (os.cpu_count() or 1)
    monkeypatch.setenv("FEDLIFE_SIM_CPUS", "1")
    assert simulation_cpus() == 1


@pytest.mark.parametrize("setting", ["0", "-1", "two", "1.5"])
def test_a_setting_that_is_not_a_positive_whole_number_is_refused(monkeypatch, setting):
    monkeypatch.setenv("FEDLIFE_SIM_CPUS", setting)
    with pytest.raises(ConfigError, match="FEDLIFE_SIM_CPUS"):
        simulation_cpus()
