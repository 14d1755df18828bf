"""The retraining loop on a 4-site simulation (issue 21's "must hold").

A federation trains; ``retrain --when 'drift > 0.25'`` does not fire; two sites get new
raw files whose features drift and prepare them; now it fires, the challenger starts
from the champion's weights with lineage to it, both are evaluated at every site in
one query, and the better challenger is promoted. A challenger made worse on purpose
(poisoned updates) is not. Asking again changes nothing; a rollback restores the
previous model; every step is in events.jsonl and the coordinator's audit log.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import polars as pl
import pytest

from client.app import make_client_app
from client.pipeline.prepare import prepare
from common.audit import AuditLog
from common.config import load_site_config
from common.features import FeatureSpec
from common.run_config import RunConfig
from server.app import make_server_app
from server.lifecycle.observe_run import read_answers
from server.lifecycle.promotion import Aliases
from simulations.ray_runtime import private_ray
from simulations.retrain import RetrainSpec, retrain, site_answer
from simulations.runner import run
from simulations.spec import SimulationSpec

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DRIFTING = ("site-000", "site-001")


@pytest.fixture
def private_env(isolated_env, monkeypatch) -> dict[str, str]:
    for name in ("RAY_TMPDIR", "FLWR_HOME", "FLWR_TELEMETRY_ENABLED"):
        monkeypatch.setenv(name, isolated_env[name])
    return isolated_env


def add_drifting_file(site_dir: Path) -> None:
    """A new export whose features are 1.4 x the site's first one; then prepare it."""
    raw = site_dir / "raw"
    frame = pl.read_csv(raw / "data.csv", null_values=["NA", ""], infer_schema_length=None)
    features = [c for c in frame.columns if c != "diagnosis"]
    frame.with_columns([pl.col(c) * 1.4 for c in features]).write_csv(
        raw / "export-2.csv", null_value="NA"
    )
    prepare(load_site_config(site_dir / "site.toml"))


def root_info(root: Path) -> dict:
    return json.loads((root / "run.json").read_text())


def observe_through_flower(root: Path, run_dir: Path) -> list:
    """``fedlife-coord retrain``'s query, run by the real ServerApp and ClientApps."""
    from flwr.simulation import run_simulation

    config = RunConfig(observe_only=True, parent_run=str(root), run_dir=str(run_dir))
    names = [p.name for p in sorted((root / "sites").iterdir())]
    with private_ray(sites=names) as init_args:
        run_simulation(
            server_app=make_server_app(config),
            client_app=make_client_app(str(root / "sites")),
            num_supernodes=len(names),
            backend_config={"client_resources": {"num_cpus": 1}, "init_args": init_args},
        )
    return sorted(read_answers(run_dir), key=lambda a: a.site)


def test_drift_fires_retrain_better_promoted_worse_kept_rollback(private_env, tmp_path):
    runs = tmp_path / "runs"
    root = runs / "root"
    run(SimulationSpec(sites=4, rounds=1, partition="iid", epsilon=None, run_dir=str(root)))

    quiet = retrain(RetrainSpec(root=str(root), when="drift > 0.25"))
    assert not quiet["decision"]["fire"] and quiet["launched"] is None
    assert quiet["decision"]["values"]["drift"] < 0.25

    for site in DRIFTING:
        add_drifting_file(root / "sites" / site)
    dry = retrain(RetrainSpec(root=str(root), when="drift > 0.25", dry_run=True))
    assert dry["decision"]["fire"] and dry["launched"] is None
    drifted = {s["site"] for s in dry["decision"]["sites"] if s["drift"] > 0.25}
    assert drifted == set(DRIFTING)
    assert dry["decision"]["values"]["new_versions"] == 2
    # a deployment asks the same through Flower: an observe-only run gets the same answers
    observed = observe_through_flower(root, tmp_path / "observe")
    expected = [
        site_answer(p, FeatureSpec.from_json(root_info(root)["feature_spec"]))
        for p in sorted((root / "sites").glob("*/site.toml"))
    ]
    assert observed == expected

    better = retrain(
        RetrainSpec(root=str(root), when="drift > 0.25", run_dir=str(runs / "c1"), margin=0.0)
    )
    assert better["decision"]["fire"]
    assert better["launched"]["promoted"], better["launched"]["reasons"]
    c1 = json.loads((runs / "c1" / "run.json").read_text())
    assert c1["parent"]["run_dir"] == str(root.resolve()) and c1["parent"]["round"] == 1
    assert c1["feature_spec"] == json.loads((root / "run.json").read_text())["feature_spec"]
    challenge = json.loads((runs / "c1" / "challenge.json").read_text())
    assert sorted(challenge["sites"]) == ["site-000", "site-001", "site-002", "site-003"]
    for both in challenge["sites"].values():
        assert both["champion"]["accuracy"] is not None
        assert both["challenger"]["accuracy"] is not None
    aliases = Aliases(runs)
    assert aliases.get("production")["run_dir"] == str((runs / "c1").resolve())
    assert aliases.get("previous")["run_dir"] == str(root.resolve())

    # the promoted champion trained on the drifted data: nothing to do now
    settled = retrain(RetrainSpec(root=str(root), when="drift > 0.25"))
    assert not settled["decision"]["fire"]

    worse = retrain(
        RetrainSpec(
            root=str(root),
            when="sites >= 4",
            run_dir=str(runs / "c2"),
            poisoned_sites=("site-000", "site-001", "site-002"),
        )
    )
    assert worse["decision"]["fire"] and not worse["launched"]["promoted"]
    assert json.loads((runs / "c2" / "run.json").read_text())["parent"]["run_dir"] == str(
        (runs / "c1").resolve()
    )
    assert aliases.get("production")["run_dir"] == str((runs / "c1").resolve())
    again = retrain(RetrainSpec(root=str(root), when="sites >= 4"))  # idempotent
    assert not again["decision"]["fire"] and "already trained" in again["decision"]["reason"]
    assert not (runs / "c3").exists()

    env = private_env
    refused = subprocess.run(
        ["fedlife-coord", "models", "promote", str(root), "--state", str(runs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert refused.returncode != 0
    assert refused.stderr.strip().count("\n") == 0 and "never evaluated" in refused.stderr
    rolled = subprocess.run(
        ["fedlife-coord", "models", "rollback", "--state", str(runs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert rolled.returncode == 0, rolled.stderr
    assert aliases.get("production")["run_dir"] == str(root.resolve())

    kinds = [e["event"] for e in (json.loads(x) for x in (runs / "events.jsonl").open())]
    for kind in (
        "retrain-not-fired",
        "drift",
        "retrain-fired",
        "retrain-started",
        "challenger-evaluated",
        "promoted",
        "not-promoted",
        "rolled-back",
    ):
        assert kind in kinds, kind
    audit = AuditLog(runs / "audit", "coordinator")
    assert [e["action"] for e in audit.entries()] == kinds
    assert audit.verify() is None
