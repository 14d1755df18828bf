"""The model registry: list, show and export a run's checkpoints, without Flower."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from common.errors import RunDirError
from common.features import FeatureSpec
from common.models import build_model
from common.run_config import RunConfig
from server.registry.registry import Registry, config_hash
from server.run_dir import RunDirectory

SPEC = FeatureSpec(
    features=["age", "bmi", "smoker=1"],
    lows=[0.0, 10.0, 0.0],
    highs=[110.0, 60.0, 1.0],
    label="outcome",
    classes=["0", "1"],
    scales=["linear", "log", "linear"],
)


def _participant(site, version, epsilon, budget=3.0, n=90, loss=0.6):
    return {
        "site": site,
        "table_version": version,
        "labeled_version": 0,
        "epsilon": epsilon,
        "epsilon_budget": budget,
        "num_examples": n,
        "train_loss": loss,
    }


@pytest.fixture
def run_dir(tmp_path):
    """A run directory as a 2-round run writes it (site-001 sat out round 2)."""
    run = RunDirectory.create(tmp_path / "run")
    config = RunConfig(num_server_rounds=2, strategy="fedprox", model="logreg").to_flower()
    run.start(config)
    run.update_info(feature_spec=SPEC.to_json(), profile_excluded=[])
    rounds = [
        {
            "round": 1,
            "participants": [
                _participant("site-000", 2, 0.8),
                _participant("site-001", 1, 0.9),
                _participant("site-002", 3, math.inf, budget=0.0),
            ],
            "excluded": [],
            "federated": {"accuracy": 0.70, "loss": 0.61},
            "central": {"accuracy": 0.72, "loss": 0.60, "auc": 0.8},
        },
        {
            "round": 2,
            "participants": [
                _participant("site-000", 2, 1.4),
                _participant("site-002", 4, math.inf),
            ],
            "excluded": [{"site": "site-001", "reason": "privacy budget"}],
            "federated": {"accuracy": 0.81, "loss": 0.50},
            "central": {},
        },
    ]
    for seed, record in enumerate(rounds, start=1):
        record.update(failures=[], train={"train-loss": 0.5}, per_site={}, wall_s=0.1)
        run.append_round(record)
        state = build_model("logreg", 3, 2, seed=seed).state_dict()
        if seed == 2:  # as an Opacus-wrapped model would name it
            state = {f"_module.{k}": v for k, v in state.items()}
        run.save_checkpoint(seed, state, {})
    run.save_final_model(build_model("logreg", 3, 2, seed=2).state_dict())
    return run.path


def test_models_lists_every_checkpoint_with_lineage(run_dir):
    registry = Registry(run_dir)
    records = registry.models()
    assert [r.round for r in records] == [1, 2]
    first, second = records
    assert first.path == str(run_dir / "models" / "round-001.pt")
    assert [(s["site"], s["table_version"]) for s in first.sites] == [
        ("site-000", 2),
        ("site-001", 1),
        ("site-002", 3),
    ]
    assert first.metrics == {"accuracy": 0.72, "loss": 0.60, "auc": 0.8}
    assert first.evaluated_on == "central"
    assert second.metrics == {"accuracy": 0.81, "loss": 0.50}
    assert second.evaluated_on == "federated"
    # epsilon: what each site had spent by that round, also a site that sat it out
    assert second.epsilon == {"site-000": 1.4, "site-001": 0.9, "site-002": None}
    assert second.excluded == [{"site": "site-001", "reason": "privacy budget"}]
    assert {r.strategy for r in records} == {"fedprox"}
    assert {r.model for r in records} == {"logreg"}
    config = json.loads((run_dir / "run.json").read_text())["config"]
    assert len(first.config_hash) == 16
    assert first.config_hash == config_hash(config) == second.config_hash
    assert config_hash({**config, "seed": 1}) != first.config_hash


def test_models_skips_a_round_without_checkpoint(run_dir):
    (run_dir / "models" / "round-001.pt").unlink()
    assert [r.round for r in Registry(run_dir).models()] == [2]


def test_show_and_unknown_round(run_dir):
    registry = Registry(run_dir)
    record = registry.show(2)
    assert record.round == 2 and record.sites[1]["table_version"] == 4
    json.dumps(record.to_json(), allow_nan=False)
    with pytest.raises(RunDirError, match="no checkpoint for round 7") as caught:
        registry.show(7)
    assert "\n" not in str(caught.value)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(RunDirError, match="run.json"):
        Registry(tmp_path)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("server_round", [1, None], ids=["round-1", "last"])
def test_export_bundle(run_dir, tmp_path, server_round):
    out = tmp_path / "export" / "bundle"
    written = Registry(run_dir).export(server_round, out)
    expected_round = server_round or 2
    names = ["model_state_dict.pt", "model.torchscript.pt", "feature_spec.json", "lineage.json"]
    assert written == [out / name for name in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert not [p for p in out.parent.iterdir() if p != out]  # no staging folder left

    state = torch.load(out / "model_state_dict.pt", weights_only=True)
    assert sorted(state) == ["bias", "weight"]  # no '_module.' prefix
    reference = build_model("logreg", 3, 2)
    reference.load_state_dict(state)
    seeded = build_model("logreg", 3, 2, seed=expected_round).state_dict()
    assert all(torch.equal(state[k], seeded[k]) for k in seeded)

    assert FeatureSpec.from_json((out / "feature_spec.json").read_text()) == SPEC
    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["round"] == expected_round
    assert lineage["config_hash"] == Registry(run_dir).show(expected_round).config_hash

    extra = {"feature_spec.json": "", "lineage.json": ""}
    scripted = torch.jit.load(str(out / "model.torchscript.pt"), _extra_files=extra)
    assert FeatureSpec.from_json(extra["feature_spec.json"]) == SPEC
    assert FeatureSpec.from_json(scripted.feature_spec) == SPEC
    assert list(scripted.features) == SPEC.features
    encoded = torch.rand(16, 3) * 2 - 1  # encoded features lie in [-1, 1]
    with torch.no_grad():
        assert torch.allclose(scripted(encoded), reference(encoded))
    with pytest.raises(Exception, match="encoded features"):
        scripted(torch.rand(4, 5))


def test_export_into_an_existing_empty_folder(run_dir, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    Registry(run_dir).export(1, out)
    assert len(list(out.iterdir())) == 4


def test_export_over_an_earlier_export_needs_force(run_dir, tmp_path):
    out = tmp_path / "bundle"
    Registry(run_dir).export(1, out)
    first = (out / "lineage.json").read_text()
    with pytest.raises(RunDirError, match="already holds an exported model"):
        Registry(run_dir).export(2, out)
    assert (out / "lineage.json").read_text() == first  # nothing replaced

    Registry(run_dir).export(2, out, force=True)
    assert (out / "lineage.json").read_text() != first


@pytest.mark.parametrize("existing", [False, True], ids=["new-out", "empty-out"])
def test_corrupt_checkpoint_writes_nothing(run_dir, tmp_path, existing):
    corrupt = run_dir / "models" / "round-002.pt"
    corrupt.write_bytes(b"PK\x03\x04 not really a checkpoint")
    out = tmp_path / "out"
    if existing:
        out.mkdir()
    registry = Registry(run_dir)
    assert [r.round for r in registry.models()] == [1, 2]  # listing does not load
    with pytest.raises(RunDirError, match="round-002.pt") as caught:
        registry.export(2, out)
    assert "\n" not in str(caught.value)
    assert not out.exists() or not any(out.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["run"] + (["out"] if existing else [])
    )


def test_checkpoint_of_another_model_is_refused(run_dir, tmp_path):
    torch.save(build_model("mlp", 3, 2).state_dict(), run_dir / "models" / "round-001.pt")
    with pytest.raises(RunDirError, match="round-001.pt.*logreg"):
        Registry(run_dir).export(1, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_list_show_export(cli, run_dir, tmp_path, assert_one_line_error):
    listed = cli("fedlife-coord", "models", "list", run_dir)
    assert listed.returncode == 0, listed.stderr
    assert "round-002.pt" in listed.stdout and "site-002 (v4)" in listed.stdout

    shown = cli("fedlife-coord", "models", "show", run_dir, "1", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["sites"][1] == {
        "site": "site-001",
        "table_version": 1,
        "labeled_version": 0,
        "epsilon": 0.9,
        "epsilon_budget": 3.0,
        "num_examples": 90,
    }

    out = tmp_path / "bundle"
    exported = cli("fedlife-coord", "models", "export", run_dir, "--out", out)
    assert exported.returncode == 0, exported.stderr
    written = {Path(p).name for p in exported.stdout.split()}
    assert {"model.torchscript.pt", "model.onnx", "model_card.md", "lineage.json"} <= written
    assert "## Privacy" in (out / "model_card.md").read_text()
    assert json.loads((out / "lineage.json").read_text())["round"] == 2

    missing = cli("fedlife-coord", "models", "show", run_dir, "9")
    assert_one_line_error(missing, "round 9")
