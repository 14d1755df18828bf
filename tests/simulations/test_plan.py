"""``plan`` rejects a bad simulation before it writes anything (in process: no CLI start-up)."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from simulations.data.dirt import DirtSpec
from simulations.data.materialise import split_rows
from simulations.runner import plan
from simulations.spec import SimulationSpec

BAD_SPECS = [
    ({"alpha": -2.0, "partition": "quantity"}, "alpha"),
    ({"partition": "natural"}, "no natural split"),
    ({"partition": "natural:nosuch"}, "nosuch"),
    ({"partition": "iid:x"}, "partition"),
    ({"partition": "bogus"}, "bogus"),
    ({"drift_site": "site-009"}, "site-009"),
    ({"site_dirt": {"site-077": DirtSpec()}}, "site-077"),
    ({"sites": 2, "drift_site": "site-001"}, ">= 3 sites"),
    ({"dataset": "dir:/no/such/folder"}, "does not exist"),
    ({"dataset": "digits", "sites": 2000}, "2000 sites"),
]


@pytest.mark.parametrize(("fields", "needle"), BAD_SPECS, ids=[n for _, n in BAD_SPECS])
def test_bad_spec_fails_before_the_run_dir_exists(tmp_path, fields, needle):
    out = tmp_path / "runs"
    with pytest.raises(ConfigError, match=needle) as error:
        plan(SimulationSpec(out=str(out), **fields))
    assert "\n" not in str(error.value)
    assert not out.exists()


@pytest.mark.parametrize("partition", ["dirichlet", "iid", "quantity"])
def test_the_same_seed_gives_the_same_split(partition):
    from simulations.data.datasets import breast_cancer

    data = breast_cancer()
    spec = SimulationSpec(sites=6, partition=partition, seed=4)

    first, again = split_rows(spec, data), split_rows(spec, data)
    other = split_rows(SimulationSpec(sites=6, partition=partition, seed=5), data)

    assert first.test_rows.tolist() == again.test_rows.tolist()
    assert [p.tolist() for p in first.parts] == [p.tolist() for p in again.parts]
    assert [p.tolist() for p in first.parts] != [p.tolist() for p in other.parts]


def test_a_natural_plan_has_one_site_per_group(tmp_path):
    planned = plan(
        SimulationSpec(dataset="digits", partition="natural:digit", sites=0, out=str(tmp_path))
    )
    assert planned.spec.sites == 10
    assert planned.run_config.model == "cnn"
    assert planned.run_config.learning_rate == 0.2
