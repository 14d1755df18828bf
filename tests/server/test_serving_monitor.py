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


def test_reference_spreads_a_sites_folded_bins_like_the_others(tmp_path):
    import json

    from server.serving.card import reference_histograms

    sites = {
        "big": {"columns": {"age": {"kind": "categorical", "counts": {"3": 60, "4": 40}}}},
        "small": {"columns": {"age": {"kind": "categorical", "counts": {"3": 9, "__other__": 6}}}},
        "tiny": {"columns": {"age": {"kind": "categorical", "counts": {"__other__": 4}}}},
    }
    (tmp_path / "statistics.json").write_text(
        json.dumps({"drift": {"label": "target", "sites": sites}})
    )
    age = reference_histograms(tmp_path)["age"]
    # small's 6 folded rows are in the bin it did not release ('4'); tiny says nothing.
    assert dict(age.counts) == {"3": 6900, "4": 4600}
    assert served_drift({"age": age}, {"age": age}) == {"age": 0.0}
