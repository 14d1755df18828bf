"""The ONNX graph ``models export`` writes answers like the torch model (1e-5)."""

import numpy as np
import pytest
import torch

from common.models import build_model
from server.serving.bundle import onnx_bytes

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize(
    ("name", "num_features", "num_classes"), [("logreg", 15, 2), ("cnn", 64, 10)]
)
def test_onnx_agrees_with_torch(name, num_features, num_classes):
    torch.manual_seed(1)
    model = build_model(name, num_features, num_classes).eval()
    for parameter in model.parameters():  # not the initial weights: any trained-like values
        parameter.data.normal_(0, 0.5)
    session = ort.InferenceSession(onnx_bytes(model, num_features))
    x = np.random.default_rng(0).uniform(-3, 3, size=(257, num_features)).astype(np.float32)
    (got,) = session.run(["logits"], {"encoded": x})
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == (257, num_classes)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    (one,) = session.run(["logits"], {"encoded": x[:1]})  # the batch dimension is dynamic
    np.testing.assert_allclose(one, want[:1], atol=1e-5, rtol=0)
