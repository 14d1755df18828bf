"""A site whose replies break their wire contract is excluded; the run goes on.

The real ServerApp and ClientApps on Flower's simulation engine; one site's train
replies carry NaN as their epsilon (``simulations.attacks.CorruptReplies``).
"""

from __future__ import annotations

import json

import pytest

import simulations.attacks
from simulations.attacks import CorruptReplies
from simulations.runner import run
from simulations.spec import SimulationSpec

pytestmark = pytest.mark.e2e


def test_one_corrupt_site_is_excluded_each_round_and_the_run_goes_on(
    isolated_env, monkeypatch, tmp_path
):
    for name in ("RAY_TMPDIR", "FLWR_HOME", "FLWR_TELEMETRY_ENABLED"):
        monkeypatch.setenv(name, isolated_env[name])
    # The runner's attack hook (poisoned_sites) builds this mod instead of ScaleUpdates.
    monkeypatch.setattr(
        simulations.attacks, "ScaleUpdates", lambda sites, factor: CorruptReplies(sites)
    )

    summary = run(
        SimulationSpec(
            sites=3, rounds=2, run_dir=str(tmp_path / "run"), poisoned_sites=("site-001",)
        )
    )

    assert summary["rounds"] == 2 and summary["stopped_reason"] == ""
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    for record in map(json.loads, lines):
        assert {p["site"] for p in record["participants"]} == {"site-000", "site-002"}
        assert [e["site"] for e in record["excluded"]] == ["site-001"]
        reason = record["excluded"][0]["reason"]
        assert reason.startswith("invalid reply: train reply: metrics.epsilon"), reason
