"""Shifting one served feature raises its drift; the others stay stable."""

import numpy as np

from common.features import FeatureSpec
from server.serving.monitor import served_drift, served_histograms

SPEC = FeatureSpec(
    features=["age", "chol", "cp=1", "cp=2"],
    lows=[20.0, 100.0, 0.0, 0.0],
    highs=[80.0, 400.0, 1.0, 1.0],
    label="target",
    classes=["0", "1"],
)


def test_shifted_feature_drifts_and_others_do_not():
    rng = np.random.default_rng(0)
    ages, chols = rng.normal(50, 6, 4000), rng.normal(240, 30, 4000)
    cps = rng.choice(["1", "2"], 4000)

    def records(shift):
        return [
            {"age": a + shift, "chol": c, "cp": p} for a, c, p in zip(ages, chols, cps, strict=True)
        ]

    reference = served_histograms(SPEC, records(0.0))
    fresh = served_histograms(SPEC, records(0.0)[:2000])
    shifted = served_histograms(SPEC, records(1.5 * 6)[:2000])
    assert all(v < 0.1 for v in served_drift(reference, fresh).values())
    drift = served_drift(reference, shifted)
    assert drift["age"] > 0.25
    assert drift["chol"] < 0.1 and drift["cp"] < 0.1
