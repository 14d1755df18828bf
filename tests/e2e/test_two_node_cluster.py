"""Per-site jobs on a 2-node Ray cluster: each site's job runs on the node holding it.

The cluster is two real Ray nodes on this machine (``ray.cluster_utils.Cluster``,
in the test's own temp dir); node A offers the resources of sites 0 and 1, node B
those of sites 2 and 3, as if each held those sites' data on its disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from client.site import Site
from common.errors import ConfigError
from simulations.data.datasets import breast_cancer
from simulations.data.sites import prepare_site, site_name, write_site
from simulations.ray_runtime import private_ray
from simulations.retain_cli import retain_sites
from simulations.site_jobs import run_per_site

pytestmark = pytest.mark.e2e

PLACEMENT = {"a": [0, 1], "b": [2, 3]}


@pytest.fixture
def two_nodes(isolated_env, monkeypatch):
    """A head node (A) and a worker node (B), each offering its sites' resources."""
    monkeypatch.setenv("RAY_TMPDIR", isolated_env["RAY_TMPDIR"])
    # Ray records the cluster's address in $RAY_TMPDIR/ray and does not create it.
    (Path(isolated_env["RAY_TMPDIR"]) / "ray").mkdir(exist_ok=True)
    resources = {node: {site_name(i): 1.0 for i in sites} for node, sites in PLACEMENT.items()}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "resources": resources["a"],
            "temp_dir": isolated_env["RAY_TMPDIR"],
            "object_store_memory": 80 * 1024**2,
        },
    )
    try:
        node_b = cluster.add_node(
            num_cpus=1, resources=resources["b"], object_store_memory=80 * 1024**2
        )
        cluster.wait_for_nodes()
        yield cluster, {"a": cluster.head_node.node_id, "b": node_b.node_id}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def test_each_sites_preparation_runs_on_the_node_holding_it_and_only_there(two_nodes, tmp_path):
    cluster, node_ids = two_nodes
    dataset = breast_cancer()
    tomls = {
        site_name(i): str(
            write_site(tmp_path, i, dataset.frame[i * 40 : (i + 1) * 40], dataset, 3.0, 1e-5)
        )
        for i in range(4)
    }

    with private_ray(address=cluster.address, sites=list(tomls)):
        outcomes = run_per_site(prepare_site, tomls)
        # A job that fails with a user error is that site's report, not the run's end.
        failed = run_per_site(prepare_site, {"site-002": str(tmp_path / "nosuch.toml")})

    expected = {site_name(i): node_ids[node] for node, sites in PLACEMENT.items() for i in sites}
    assert {site: o["node_id"] for site, o in outcomes.items()} == expected
    assert len(set(expected.values())) == 2
    assert failed["site-002"]["node_id"] == node_ids["b"]
    assert "site config not found" in failed["site-002"]["error"]
    for site, outcome in outcomes.items():
        assert outcome["result"]["rows_clean"] == 40, outcome
        assert outcome["result"]["gate"] == "pass"
        assert Site.from_path(tomls[site]).clean[1].version >= 0

    # Retention too: every site's job, on its own node.
    retained = retain_sites(tmp_path, ray_address=cluster.address)
    assert {site: o["node_id"] for site, o in retained.items()} == expected
    for outcome in retained.values():
        assert "error" not in outcome, outcome
        assert {"raw", "clean"} <= {t["table"] for t in outcome["result"]["tables"]}

    # A site no node offers a resource for: one line, and Ray let go again.
    five = [site_name(i) for i in range(5)]
    with (
        pytest.raises(ConfigError, match="site-004") as error,
        private_ray(address=cluster.address, sites=five),
    ):
        pass
    assert "\n" not in str(error.value)
    assert not ray.is_initialized()
