"""The raw-column ONNX graph scales like the feature contract, then the model."""

import numpy as np
import pytest
import torch

from common.features import FeatureSpec
from common.models import build_model
from server.serving.onnx_raw import onnx_raw_bytes, raw_inputs
from server.serving.records import check_records, encode_records

ort = pytest.importorskip("onnxruntime")

BASE = dict(
    features=["age", "chol", "cp=1", "cp=2", "cp=4", "sex"],
    lows=[18.0, 100.0, 0.0, 0.0, 0.0, 0.0],
    highs=[100.0, 600.0, 1.0, 1.0, 1.0, 1.0],
    label="num",
    classes=["0", "1"],
    scales=["linear", "log", "linear", "linear", "linear", "linear"],
)


@pytest.mark.parametrize(
    "moments",
    [{}, {"centers": [0.4, 0.5, 0.2, 0.3, 0.5, 0.7], "spreads": [0.1, 0.2, 0.4, 0.45, 0.5, 0.3]}],
)
def test_raw_graph_agrees_with_contract_and_model(moments):
    spec = FeatureSpec(**BASE, **moments)
    torch.manual_seed(0)
    model = build_model("mlp", spec.num_features, spec.num_classes).eval()
    rng = np.random.default_rng(0)
    records = [
        {
            "age": None if i % 7 == 0 else float(rng.uniform(0, 130)),  # out of range too
            "chol": None if i % 5 == 0 else float(rng.uniform(50, 700)),
            "cp": None if i % 6 == 0 else str(rng.choice(["1", "2", "4"])),
            "sex": float(rng.integers(0, 2)),
        }
        for i in range(300)
    ]
    clean, errors = check_records(spec, records)
    assert errors == []
    with torch.no_grad():
        want = model(torch.from_numpy(encode_records(spec, clean))).numpy()

    inputs = raw_inputs(spec)
    numeric = np.array(
        [[np.nan if r[c] is None else r[c] for c in inputs["numeric"]] for r in records],
        dtype=np.float32,
    )
    codes = np.array(
        [
            [
                -1 if r[c] is None else values.index(r[c])
                for c, values in inputs["categories"].items()
            ]
            for r in records
        ],
        dtype=np.int64,
    )
    session = ort.InferenceSession(onnx_raw_bytes(model, spec, opset=17))
    (got,) = session.run(["logits"], {"numeric": numeric, "categories": codes})
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
