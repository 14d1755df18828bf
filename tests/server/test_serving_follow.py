"""Serving a state folder answers with the production model and follows its alias."""

from __future__ import annotations

import json

import pytest

from common.errors import RunDirError
from common.features import FeatureSpec
from common.models import build_model
from common.run_config import RunConfig
from server.lifecycle.events import Events
from server.lifecycle.promotion import ALIASES, Aliases
from server.run_dir import RunDirectory
from server.serving.follow import open_model
from server.serving.model import load_served_model
from server.serving.records import check_records, encode_records
from server.serving.service import create_app

fastapi_testclient = pytest.importorskip("fastapi.testclient")

SPEC = FeatureSpec(
    features=["age", "bmi", "smoker=1"],
    lows=[0.0, 10.0, 0.0],
    highs=[110.0, 60.0, 1.0],
    label="outcome",
    classes=["0", "1"],
)
RECORDS = [{"age": "61", "bmi": "31", "smoker": "1"}, {"age": 35, "bmi": 22, "smoker": "1"}]


def _run(path, seed):
    """A one-round run whose checkpoint is a logreg initialised from ``seed``."""
    run = RunDirectory.create(path)
    run.start(RunConfig(num_server_rounds=1, model="logreg").to_flower())
    run.update_info(feature_spec=SPEC.to_json(), profile_excluded=[])
    run.append_round(
        {"round": 1, "participants": [], "excluded": [], "failures": [], "federated": {},
         "central": {}, "train": {}, "per_site": {}, "wall_s": 0.1}
    )  # fmt: skip
    run.save_checkpoint(1, build_model("logreg", 3, 2, seed=seed).state_dict(), {})
    return run.path


@pytest.fixture
def state(tmp_path):
    """A state folder whose production model is run B; run A is previous."""
    a, b = _run(tmp_path / "a", seed=1), _run(tmp_path / "b", seed=2)
    folder = tmp_path / "state"
    folder.mkdir()
    alias = lambda run: {"run_dir": str(run), "run_id": run.name, "round": 1}  # noqa: E731
    (folder / ALIASES).write_text(json.dumps({"production": alias(b), "previous": alias(a)}))
    return folder, a, b


def _probabilities(client):
    answer = client.post("/predict", content=json.dumps(RECORDS))
    assert answer.status_code == 200
    return [row["probabilities"]["1"] for row in answer.json()]


def _expected(run_dir):
    """Run ``run_dir``'s model on RECORDS, encoded by the serving contract."""
    clean, errors = check_records(SPEC, RECORDS)
    assert not errors
    return [
        float(p[1]) for p in load_served_model(run_dir).predict_proba(encode_records(SPEC, clean))
    ]


def test_the_service_follows_a_rollback_without_restart(state):
    folder, a, b = state
    client = fastapi_testclient.TestClient(create_app(open_model(folder)))
    assert _probabilities(client) == pytest.approx(_expected(b), abs=1e-6)
    assert _expected(a) != pytest.approx(_expected(b), abs=1e-3)

    Aliases(folder).rollback(Events(folder))

    assert _probabilities(client) == pytest.approx(_expected(a), abs=1e-6)
    assert client.get("/model").json()["run_id"] == load_served_model(a).card["run_id"]


def test_a_broken_alias_file_keeps_the_model_being_served(state):
    folder, _, b = state
    client = fastapi_testclient.TestClient(create_app(open_model(folder)))
    (folder / ALIASES).write_text("{not json")
    assert _probabilities(client) == pytest.approx(_expected(b), abs=1e-6)


def test_a_state_folder_names_its_round_and_needs_a_production_model(state, tmp_path):
    folder, _, _ = state
    with pytest.raises(RunDirError, match="drop --round"):
        open_model(folder, server_round=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ALIASES).write_text("{}")
    with pytest.raises(RunDirError, match="no production model"):
        open_model(empty)
