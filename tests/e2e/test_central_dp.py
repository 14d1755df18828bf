"""Central DP: Flower's fixed-clipping wrappers around the strategy, on real runs.

With a tiny clipping norm the global model can move at most about that norm per
round, whoever clips (the server, or each site's ClientApp when asked) and whatever
a poisoning site sends to a server that clips.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from server.run_dir import RunDirectory
from simulations.runner import run
from simulations.spec import SimulationSpec

pytestmark = pytest.mark.e2e

CLIP, NOISE = 1e-3, 0.01


def round_moves(run_dir) -> list[float]:
    """L2 distance between consecutive rounds' global models."""
    directory = RunDirectory(run_dir)
    states = [directory.load_checkpoint(r)[0] for r in (1, 2, 3)]
    flat = [np.concatenate([np.ravel(np.asarray(v)) for v in s.values()]) for s in states]
    return [float(np.linalg.norm(b - a)) for a, b in zip(flat, flat[1:])]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["client", "server"])
def test_clipping_bounds_each_round_and_site_level_epsilon_grows(private_env, tmp_path, where):
    spec = SimulationSpec(
        sites=3,
        rounds=3,
        partition="iid",
        epsilon=None,
        run_dir=str(tmp_path / "run"),
        poisoned_sites=("site-001",) if where == "server" else (),
        poison_factor=-100.0,
        run_options={
            "central_dp": where,
            "central_dp_clipping_norm": CLIP,
            "central_dp_noise_multiplier": NOISE,
        },
    )
    summary = run(spec)

    assert summary["rounds"] == 3
    # Each site's update is clipped to CLIP, so their mean moves at most CLIP (plus
    # noise of std NOISE * CLIP / 3 per weight); unclipped, a round moves ~0.1-10.
    for moved in round_moves(tmp_path / "run"):
        assert 0 < moved < 1.5 * CLIP
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    epsilons = [json.loads(line)["train"]["central_dp_epsilon"] for line in lines]
    assert all(math.isfinite(e) for e in epsilons)
    assert epsilons == sorted(epsilons) and epsilons[0] < epsilons[-1]


def test_the_federation_ledger_stops_a_run_before_it_passes_the_budget(private_env, tmp_path):
    from common.run_config import RunConfig
    from server.central_dp import composed_epsilon, worst_noise_multiplier
    from server.central_dp_ledger import LEDGER_NAME

    sigma = 2.0
    dp = RunConfig(central_dp="server", central_dp_noise_multiplier=sigma)
    # Each round is reserved at its worst (2 of 3 sites answer), settled at its real noise.
    worst = worst_noise_multiplier(dp, expected=3)
    second, third = ([(sigma, done), (worst, 1)] for done in (1, 2))
    budget = (composed_epsilon(second, 1e-5) + composed_epsilon(third, 1e-5)) / 2
    spec = SimulationSpec(
        sites=3,
        rounds=3,
        partition="iid",
        epsilon=None,
        run_dir=str(tmp_path / "run"),
        run_options={
            "central_dp": "server",
            "central_dp_noise_multiplier": sigma,
            "central_dp_epsilon_budget": budget,
        },
    )
    run(spec)

    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["round"] for line in lines] == [1, 2, 3]
    assert "central-dp-epsilon-budget" in lines[-1]["stopped"]
    assert lines[1]["train"]["central_dp_federation_epsilon"] <= budget
    ledger = (tmp_path / LEDGER_NAME).read_text().splitlines()
    entries = [json.loads(x) for x in ledger]
    assert [(e["kind"], e.get("round")) for e in entries] == [
        ("reserve", 1),
        ("settle", None),
        ("reserve", 2),
        ("settle", None),
    ]
    assert [e["noise_multiplier"] for e in entries] == [worst, sigma, worst, sigma]
