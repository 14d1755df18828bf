"""Warm start: the parent's contract and weights, lineage in run.json; a parent that
does not exist, has no such round or trained another model is one line, nothing
recorded."""

from __future__ import annotations

import json

import pytest
import torch

from common.errors import RunDirError
from common.models import build_model
from common.run_config import RunConfig
from server.lifecycle.warm_start import parent_lineage, warm_start
from server.run_dir import RunDirectory
from tests.server.test_registry import SPEC, run_dir  # noqa: F401 - the fixture


def test_starts_from_the_parents_last_checkpoint(run_dir, tmp_path):  # noqa: F811
    child = RunDirectory.create(tmp_path / "child")
    config = RunConfig(model="logreg", parent_run=str(run_dir))
    spec, arrays, lineage = warm_start(config, child)
    assert spec == SPEC
    assert lineage["round"] == 2 and lineage["run_dir"] == str(run_dir.resolve())
    expected = build_model("logreg", 3, 2, seed=2).state_dict()  # round 2's, '_module.' gone
    for name, value in arrays.to_torch_state_dict().items():
        assert torch.equal(value, expected[name])
    info = json.loads((child.path / "run.json").read_text())
    assert info["parent"] == lineage and info["feature_spec"] == SPEC.to_json()


def test_a_chosen_round(run_dir):  # noqa: F811
    assert parent_lineage(run_dir, 1)["round"] == 1


@pytest.mark.parametrize(
    ("make_config", "needle"),
    [
        (lambda run, tmp: RunConfig(parent_run=str(tmp / "gone")), "parent run does not exist"),
        (
            lambda run, tmp: RunConfig(parent_run=str(run), parent_round=7),
            "no checkpoint for round 7",
        ),
        (
            lambda run, tmp: RunConfig(parent_run=str(run), model="mlp"),
            "parent trained model 'logreg'",
        ),
    ],
    ids=["missing", "round", "model"],
)
def test_bad_parent(run_dir, tmp_path, make_config, needle):  # noqa: F811
    child = RunDirectory.create(tmp_path / "child")
    with pytest.raises(RunDirError, match=needle):
        warm_start(make_config(run_dir, tmp_path), child)
    assert not (child.path / "run.json").exists()
