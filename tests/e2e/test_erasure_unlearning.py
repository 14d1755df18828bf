"""Prepare, train, erase three subjects, retain: they are gone, and the model unlearns them."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from client.cli import app as site_app
from client.pipeline.prepare import prepare
from client.privacy.pseudonyms import pseudonym, site_key
from common.config import load_site_config
from server.cli import app as coord_app
from server.registry.registry import Registry
from tests.client.subject_sites import subject_id, subject_name, write_subject_site
from tests.client.test_retention import rows_like, store_holds, subject_values
from tests.e2e.conftest import run_cli, script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIMULATE = """
import sys
from simulations.runner import run
from simulations.spec import SimulationSpec
run(SimulationSpec(sites=2, rounds=2, epsilon=None, seed=3, sites_dir=sys.argv[1],
                   run_dir=sys.argv[2]))
"""
ERASED = [2, 5, 9]


def invoke(app, *args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def test_erasure_reaches_every_file_and_the_model(isolated_env, tmp_path):
    sites = tmp_path / "sites"
    tomls = [write_subject_site(sites, i, rows=50) for i in range(2)]
    for toml in tomls:
        prepare(load_site_config(toml))
    run_dir = tmp_path / "run"
    trained = run_cli([sys.executable, "-c", SIMULATE, str(sites), str(run_dir)], isolated_env)
    assert trained.returncode == 0, trained.stderr[-2000:]

    subjects = [subject_id(0, i) for i in ERASED]
    invoke(site_app, "erase", *subjects, "-c", tomls[0])
    report = json.loads(invoke(site_app, "retain", "-c", tomls[0], "--json"))
    store = tomls[0].parent / "store"
    for i in ERASED:
        assert store_holds(store, subject_id(0, i)) == []
        assert store_holds(store, subject_name(0, i)) == []
        assert rows_like(store, subject_values(load_site_config(tomls[0]), i)) == []
    kept = pseudonym(site_key(store), subject_id(0, 3))  # stored as its pseudonym
    assert store_holds(store, kept)  # the others are still there
    purged = next(t["versions_erased"] for t in report["tables"] if t["table"] == "clean")
    assert purged == [0]  # the only clean version, which both rounds trained on

    option = f"site-000:{','.join(map(str, purged))}"
    affected = json.loads(
        invoke(coord_app, "models", "affected", run_dir, "--purged", option, "--json")
    )
    assert [m["round"] for m in affected] == [1, 2]

    fork = tmp_path / "unlearned"
    invoke(coord_app, "unlearn", run_dir, "--site", "site-000", "--purged", "0", "--out", fork)
    resumed = run_cli([script("fedlife-sim"), "run", "--resume", str(fork), "--json"], isolated_env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["rounds"] == 2

    models = Registry(fork).models()
    assert [m.round for m in models] == [1, 2]
    for model in models:
        used = {s["site"]: s["table_version"] for s in model.sites}
        assert used["site-000"] not in purged and "site-001" in used
        assert model.unlearning["purged_versions"] == purged
        assert model.unlearning["replays_run"] == str(run_dir.resolve())
    assert (fork / "model.pt").exists()
    assert invoke(site_app, "audit", "verify", "-c", tomls[0]).startswith("audit log intact")
    actions = [json.loads(line)["action"] for line in (store / "audit" / "audit.jsonl").open()]
    assert actions.count("train") == 4 and "erase" in actions and "retain" in actions
    for log in (run_dir, fork):
        assert "intact" in invoke(coord_app, "audit", "verify", log)
