"""Raw records encode like the sites' rows, and bad records are named."""

import numpy as np
import polars as pl

from common.features import FeatureSpec
from server.serving.records import check_records, encode_records

SPEC = FeatureSpec(
    features=["age", "chol", "cp=1", "cp=2"],
    lows=[20.0, 100.0, 0.0, 0.0],
    highs=[80.0, 400.0, 1.0, 1.0],
    label="target",
    classes=["0", "1"],
    scales=["linear", "log", "linear", "linear"],
)


def test_raw_records_encode_like_the_contract():
    records = [{"age": "50", "chol": "?", "cp": "2"}, {"age": 30, "chol": 250, "cp": 1.0}]
    clean, errors = check_records(SPEC, records)
    assert errors == []
    got = encode_records(SPEC, clean)
    frame = pl.DataFrame(
        {"age": [50.0, 30.0], "chol": [None, 250.0], "cp": ["2", "1"], "target": ["0", "1"]}
    )
    want, _ = SPEC.encode(frame)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_bad_records_are_named_and_others_kept():
    records = [
        {"age": "x", "chol": 200, "cp": "1"},
        {"age": 40, "chol": 200, "cp": "9"},
        {"chol": 200, "cp": "1"},
        {"age": 40, "chol": 200, "cp": "1"},
    ]
    clean, errors = check_records(SPEC, records)
    assert [(e.record, e.field) for e in errors] == [(0, "age"), (1, "cp"), (2, "age")]
    assert len(clean) == 1


def test_missing_indicators_are_derived_like_the_sites_cleaning():
    spec = FeatureSpec(
        features=["chol", "chol_missing"],
        lows=[100.0, 0.0],
        highs=[400.0, 1.0],
        label="target",
        classes=["0", "1"],
    )
    clean, errors = check_records(spec, [{"chol": "NA"}, {"chol": "250"}])
    assert errors == []
    assert [r["chol_missing"] for r in clean] == [1.0, 0.0]
