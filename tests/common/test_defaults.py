"""One default per setting: pyproject's run config and the CLIs take theirs from the models."""

from __future__ import annotations

import inspect
import tomllib
import typing
from pathlib import Path

import pytest

from common.config import PrivacySection
from common.models import MODELS
from common.run_config import ModelName, RunConfig

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_run_config_is_run_config_defaults():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject["tool"]["flwr"]["app"]["config"]
    expected = RunConfig().to_flower()
    assert list(declared) == list(expected)  # every key, in the model's order
    for key, value in expected.items():
        assert declared[key] == value and type(declared[key]) is type(value), key


def test_model_names_are_the_models_common_models_builds():
    assert set(typing.get_args(ModelName)) == set(MODELS)


def cli_defaults(command) -> dict[str, object]:
    return {
        name: parameter.default.default
        for name, parameter in inspect.signature(command).parameters.items()
    }


@pytest.mark.parametrize("command_name", ["run_command", "sites_command"])
def test_simulation_cli_defaults_are_the_spec_defaults(command_name):
    from simulations import cli
    from simulations.spec import SimulationSpec

    defaults = cli_defaults(getattr(cli, command_name))
    spec = SimulationSpec()
    for name in ("dataset", "seed", "alpha", "rounds", "strategy", "partition", "out", "sites"):
        if name in defaults and defaults[name] not in (None, ...):
            assert defaults[name] == getattr(spec, name), name
    assert defaults["epsilon"] == str(spec.epsilon)
    assert spec.rounds == RunConfig().num_server_rounds
    assert spec.strategy == RunConfig().strategy and spec.seed == RunConfig().seed
    assert (spec.epsilon, spec.delta) == (PrivacySection().epsilon_budget, PrivacySection().delta)


def test_sweep_cli_defaults_are_the_spec_defaults():
    from simulations.spec import SimulationSpec
    from simulations.sweep_cli import sweep_command

    defaults = cli_defaults(sweep_command)
    spec = SimulationSpec()
    assert defaults["rounds"] == spec.rounds and defaults["sites"] == spec.sites
    assert defaults["strategy"] == spec.strategy and defaults["dataset"] == spec.dataset
    assert defaults["epsilon"] == str(spec.epsilon) and defaults["seed"] == str(spec.seed)
    assert defaults["alpha"] == str(spec.alpha) and defaults["partition"] == spec.partition
