"""Sites that refuse past their privacy budget, and rounds that stop saying why.

The tests run the real ServerApp and ClientApps on Flower's simulation engine in this
process (a private Ray in the test's own temp dir), over virtual sites written once
and reused by every run (``SimulationSpec.sites_dir``), so their ledgers carry over.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray

from client.privacy.ledger import LedgerEntry, compose_epsilon
from client.site import Site
from simulations.data.datasets import load_dataset
from simulations.data.materialise import materialise_sites
from simulations.data.sites import site_name
from simulations.ray_runtime import private_ray
from simulations.runner import run
from simulations.spec import SimulationSpec

pytestmark = pytest.mark.e2e

BUDGET, DELTA = 3.0, 1e-5


def write_sites(root: Path, **spec) -> list[Site]:
    """Materialise and prepare virtual sites under ``root/sites`` (``test.csv`` beside)."""
    spec = SimulationSpec(**spec)
    root.mkdir(parents=True)
    with private_ray(sites=[site_name(i) for i in range(spec.sites)]):
        materialise_sites(spec, load_dataset(spec.dataset), root, root / "sites")
    return [Site.from_path(path) for path in sorted((root / "sites").glob("*/site.toml"))]


def test_the_private_ray_instance_registers_on_loopback(private_env):
    with private_ray(sites=[site_name(0)]):
        assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}


def rounds_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def spend_almost_all(site: Site) -> float:
    """Record an earlier study that left ``site`` no room for even one more round.

    Its noise is searched so that it spent just under the budget: within budget,
    but too close to it for any further steps, however noisy.
    """
    rate, steps = 0.5, 20
    low, high = 0.3, 50.0  # epsilon falls as the noise multiplier grows
    for _ in range(100):  # each try composes a new RDP curve: stop once close enough
        middle = (low + high) / 2
        epsilon = compose_epsilon([(middle, rate, steps)], DELTA)
        if epsilon > BUDGET:
            low = middle
        else:
            high = middle
            if epsilon > BUDGET - 1e-7:
                break
    site.ledger.record(LedgerEntry(high, rate, steps, DELTA, "earlier-study", 1, 0))
    spent = site.ledger.epsilon(DELTA)
    assert BUDGET - 1e-6 < spent <= BUDGET
    return spent


@pytest.mark.slow
def test_site_past_its_budget_is_refused_and_the_run_goes_on_without_it(private_env, tmp_path):
    sites = write_sites(tmp_path / "fed", sites=3, partition="iid", epsilon=BUDGET, delta=DELTA)
    assert [s.config.privacy.epsilon_budget for s in sites] == [BUDGET] * 3
    spent_before = spend_almost_all(sites[0])
    sites_dir = str(tmp_path / "fed" / "sites")

    summary = run(
        SimulationSpec(
            sites=3, rounds=2, epsilon=BUDGET, sites_dir=sites_dir, run_dir=str(tmp_path / "one")
        )
    )

    assert summary["rounds"] == 2
    assert summary["stopped_reason"] == ""
    assert sorted(summary["epsilon_spent"]) == ["site-001", "site-002"]
    records = rounds_of(tmp_path / "one")
    assert [r["round"] for r in records] == [1, 2]
    for record in records:
        assert {p["site"] for p in record["participants"]} == {"site-001", "site-002"}
        assert [e["site"] for e in record["excluded"]] == ["site-000"]
        assert "budget" in record["excluded"][0]["reason"]
        assert all(p["epsilon"] <= BUDGET for p in record["participants"])
    assert 0.5 < summary["test_accuracy"] <= 1.0
    # The refusing site took no step; the others spent their budget, never more.
    assert len(sites[0].ledger.entries()) == 1
    assert sites[0].ledger.epsilon(DELTA) == spent_before
    for site in sites[1:]:  # the centers' release, then two rounds
        mechanisms = [e.mechanism for e in site.ledger.entries()]
        assert mechanisms == ["gaussian-moments"] + ["dp-sgd"] * 2
        assert 0.5 * BUDGET < site.ledger.epsilon(DELTA) <= BUDGET

    # Again over the same sites, now needing all three: site-000 still refuses, so
    # the first round has too few updates and the run stops, saying why.
    again = run(
        SimulationSpec(
            sites=3,
            rounds=2,
            epsilon=BUDGET,
            sites_dir=sites_dir,
            run_dir=str(tmp_path / "two"),
            run_options={"min_train_sites": 3},
        )
    )

    assert again["rounds"] == 0
    assert "round 1" in again["stopped_reason"]
    assert "min-train-sites=3" in again["stopped_reason"]
    (stopped,) = rounds_of(tmp_path / "two")
    assert stopped["stopped"] == again["stopped_reason"]
    assert "site-000" in {e["site"] for e in stopped["excluded"]}
    for site in sites:
        assert site.ledger.epsilon(DELTA) <= BUDGET


@pytest.mark.slow
def test_sites_that_release_no_moments_still_train_on_public_ranges(private_env, tmp_path):
    """Every site's policy refuses to release moments: the run goes on uncentered."""
    sites = write_sites(tmp_path / "fed", sites=2, partition="iid", epsilon=BUDGET)
    for site in sites:
        path = site.config.base_dir / "site.toml"
        text = path.read_text().replace("[privacy]\n", "[privacy]\nrelease_moments = false\n")
        path.write_text(text)
    summary = run(
        SimulationSpec(
            sites=2,
            rounds=2,
            epsilon=BUDGET,
            sites_dir=str(tmp_path / "fed" / "sites"),
            run_dir=str(tmp_path / "run"),
        )
    )

    assert summary["rounds"] == 2 and summary["stopped_reason"] == ""
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert "no site released feature moments" in info["centers_skipped"]
    assert json.loads(info["feature_spec"])["centers"] == []
    assert {e["reason"] for e in summary["profile_excluded"]} == {
        "site policy: no release of feature moments"
    }
    for site in sites:
        assert [e.mechanism for e in site.ledger.entries()] == ["dp-sgd"] * 2


def test_a_round_waits_for_min_available_sites_then_stops_saying_why(
    private_env, tmp_path, monkeypatch
):
    """Two sites online, three asked for: round 1 waits (here 1 s, not 120), then stops."""
    monkeypatch.setattr("server.site_exchange.NODE_WAIT_S", 1.0)
    write_sites(tmp_path / "fed", sites=2, partition="iid", epsilon=None)
    summary = run(
        SimulationSpec(
            sites=2,
            rounds=2,
            epsilon=None,
            sites_dir=str(tmp_path / "fed" / "sites"),
            run_dir=str(tmp_path / "run"),
            run_options={"min_available_sites": 3},
        )
    )

    assert summary["rounds"] == 0
    assert summary["stopped_reason"] == (
        "round 1: 2 site(s) connected after 1 s, fewer than min-available-sites=3"
    )
    (stopped,) = rounds_of(tmp_path / "run")
    assert stopped["stopped"] == summary["stopped_reason"] and not stopped["participants"]
