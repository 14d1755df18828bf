"""Which models used purged versions, and the fork that replays a run without them."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from common.errors import ConfigError, RunDirError
from common.run_config import RunConfig
from server.cli import app
from server.registry.registry import Registry
from server.registry.unlearning import affected_models, fork_for_unlearning, parse_purged
from server.run_dir import RunDirectory

# round -> (site, table version) of its participants
ROUNDS = {1: [("a", 0), ("b", 0)], 2: [("a", 1), ("b", 0)], 3: [("a", 2), ("b", 3)]}


def make_run(tmp_path, reported: list[int] | None = None):
    run = RunDirectory.create(tmp_path / "run")
    config = RunConfig(num_server_rounds=3, run_dir=str(run.path)).to_flower()
    run.write_json(
        "run.json",
        {
            "run_id": "r1",
            "config": config,
            "feature_spec": "{}",
            "simulation": {"sites": 2, "run_dir": str(run.path), "sites_dir": ""},
        },
    )
    for n, sites in ROUNDS.items():
        participants = [
            {"site": s, "table_version": v, "purged_versions": reported if s == "a" else []}
            for s, v in sites
        ]
        run.append_round({"round": n, "participants": participants, "excluded": []})
        run.save_checkpoint(n, {"w": torch.full((2,), float(n))}, {"m_t": [n]})
    return run


def test_models_built_on_a_purged_version_are_affected_from_its_first_use(tmp_path):
    run = make_run(tmp_path)
    found = affected_models([run.path], {"a": {1}})
    assert [m.round for m in found] == [2, 3]
    assert found[0].used == (("a", 1, 2),)
    assert affected_models([run.path], {"b": {3}})[0].round == 3
    assert affected_models([run.path], {"a": {7}}) == []


def test_purges_the_sites_reported_are_read_from_the_run(tmp_path):
    run = make_run(tmp_path, reported=[0])
    assert [m.round for m in affected_models([run.path], {})] == [1, 2, 3]


def test_the_fork_keeps_only_the_rounds_before_the_first_use(tmp_path):
    run = make_run(tmp_path)
    target, after = fork_for_unlearning(run.path, "a", {"a": {1}})
    assert after == 1 and target == (tmp_path / "run-unlearn-a").resolve()
    fork = RunDirectory(target)
    assert [r["round"] for r in fork.rounds()] == [1]
    weights, state = fork.load_checkpoint(1)
    assert torch.equal(weights["w"], torch.full((2,), 1.0)) and state == {"m_t": [1]}
    assert not (target / "models" / "round-002.pt").exists()
    info = fork.info()
    assert info["run_id"] != "r1" and info["config"]["run-dir"] == str(target)
    assert info["config"]["resume"] is True
    assert info["simulation"]["sites_dir"] == str(run.path.resolve() / "sites")
    assert info["unlearning"]["purged_versions"] == [1]
    assert Registry(target).show(1).unlearning["replays_run_id"] == "r1"
    assert fork.audit().verify() is None and run.audit().entries()[-1]["action"] == "unlearn"


def test_a_fork_refuses_what_it_cannot_do(tmp_path):
    run = make_run(tmp_path)
    with pytest.raises(ConfigError, match="no purged versions known"):
        fork_for_unlearning(run.path, "a", {})
    with pytest.raises(RunDirError, match="no model was trained"):
        fork_for_unlearning(run.path, "a", {"a": {9}})
    fork_for_unlearning(run.path, "a", {"a": {0}})
    with pytest.raises(RunDirError, match="already exists"):
        fork_for_unlearning(run.path, "a", {"a": {0}})
    with pytest.raises(ConfigError, match="SITE:VERSION"):
        parse_purged(["a:x"])


def test_the_cli_lists_affected_models_and_forks(tmp_path):
    run = make_run(tmp_path)
    runner = CliRunner()
    env = {"COLUMNS": "200"}
    result = runner.invoke(app, ["models", "affected", str(run.path), "--purged", "a:1", "--json"])
    assert result.exit_code == 0, result.output
    assert [m["round"] for m in json.loads(result.stdout)] == [2, 3]
    result = runner.invoke(app, ["unlearn", str(run.path), "--site", "a", "--purged", "1"], env=env)
    assert result.exit_code == 0 and "replays from round 1" in result.stdout
    result = runner.invoke(app, ["models", "affected", str(run.path), "--purged", "nope"])
    assert result.exit_code != 0 and result.stderr.startswith("error: --purged must be")
    result = runner.invoke(app, ["audit", "verify", str(run.path)])
    assert result.exit_code == 0 and "intact" in result.stdout
    result = runner.invoke(app, ["audit", "verify", str(tmp_path)])
    assert result.exit_code != 0 and "not a fedlife run directory" in result.stderr
