"""The FastAPI app answers raw records like the torch model on encoded rows."""

import json

import polars as pl
import pytest
import torch

from common.features import FeatureSpec
from server.serving.model import ServedModel
from server.serving.service import create_app

fastapi_testclient = pytest.importorskip("fastapi.testclient")

SPEC = FeatureSpec(
    features=["age", "chol", "cp=1", "cp=2"],
    lows=[20.0, 100.0, 0.0, 0.0],
    highs=[80.0, 400.0, 1.0, 1.0],
    label="target",
    classes=["0", "1"],
)


@pytest.fixture
def model_and_client():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)

    served = ServedModel(model, SPEC, card={"name": "test"})
    app = create_app(served, max_body_bytes=2000)
    return served.predict_proba, fastapi_testclient.TestClient(app)


def test_predict_matches_model(model_and_client):
    predict_proba, client = model_and_client
    records = [{"age": "61", "chol": "?", "cp": "1"}, {"age": 35, "chol": 300, "cp": "2"}]
    answer = client.post("/predict", content=json.dumps(records))
    assert answer.status_code == 200
    frame = pl.DataFrame(
        {"age": [61.0, 35.0], "chol": [None, 300.0], "cp": ["1", "2"], "target": ["0", "0"]}
    )
    x, _ = SPEC.encode(frame)
    want = predict_proba(x)
    for got, row in zip(answer.json(), want, strict=True):
        assert got["probabilities"]["1"] == pytest.approx(float(row[1]), abs=1e-6)


def test_bad_record_422_and_oversized_413(model_and_client):
    _, client = model_and_client
    bad = [{"age": 40, "chol": 200, "cp": "1"}, {"age": 40, "chol": 200, "cp": "7"}]
    answer = client.post("/predict", content=json.dumps(bad))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["record"] == 1
    assert answer.json()["detail"][0]["field"] == "cp"
    big = [{"age": 40, "chol": 200, "cp": "1"}] * 100
    assert client.post("/predict", content=json.dumps(big)).status_code == 413
    assert client.get("/health").json() == {"status": "ok"}
