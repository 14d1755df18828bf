"""The feature contract: encoding into [-1, 1], merging sites' specs, JSON."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import DataError
from common.features import FeatureSpec


def spec(**overrides) -> FeatureSpec:
    fields = {
        "features": ["age", "glucose"],
        "lows": [0.0, 1.0],
        "highs": [120.0, 600.0],
        "label": "y",
        "classes": ["0", "1"],
        "scales": ["linear", "log"],
    }
    fields.update(overrides)
    return FeatureSpec(**fields)


values = st.one_of(
    st.none(),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(
    column=st.lists(values, min_size=1, max_size=30),
    scale=st.sampled_from(["linear", "log"]),
    low=st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
    width=st.floats(min_value=1e-2, max_value=1e4, allow_nan=False),
)
def test_encode_maps_any_value_into_unit_interval(column, scale, low, width):
    high = low + width
    one = FeatureSpec(["a"], [low], [high], "y", ["0", "1"], [scale])
    frame = pl.DataFrame({"a": pl.Series(column, dtype=pl.Float64), "y": ["0"] * len(column)})

    x, y = one.encode(frame)

    assert x.shape == (len(column), 1)
    assert x.dtype == np.float32
    assert np.all(np.isfinite(x))
    assert np.all((x >= -1) & (x <= 1))
    for value, encoded in zip(column, x[:, 0], strict=True):
        if value is None:
            assert encoded == 0.0
        elif value <= low:
            assert encoded == pytest.approx(-1.0, abs=1e-6)
        elif value >= high:
            assert encoded == pytest.approx(1.0, abs=1e-6)
    # The map is monotone: larger raw values never encode lower.
    present = [(v, e) for v, e in zip(column, x[:, 0], strict=True) if v is not None]
    for (v1, e1), (v2, e2) in pairwise(sorted(present)):
        assert e1 <= e2 + 1e-6, (v1, v2)
    assert y.tolist() == [0] * len(column)


def test_encode_linear_and_log_values():
    frame = pl.DataFrame(
        {"age": [0.0, 60.0, 120.0], "glucose": [1.0, 600.0, 300.5], "y": [0, 1, 1]}
    )

    x, y = spec().encode(frame)

    np.testing.assert_allclose(x[:, 0], [-1.0, 0.0, 1.0], atol=1e-6)
    expected_log = math.log1p(299.5) / math.log1p(599.0) * 2 - 1
    np.testing.assert_allclose(x[:, 1], [-1.0, 1.0, expected_log], atol=1e-6)
    assert y.dtype == np.int64
    assert y.tolist() == [0, 1, 1]


def test_encode_clips_out_of_range_and_fills_nulls_with_zero():
    frame = pl.DataFrame(
        {"age": [-50.0, 500.0, None], "glucose": [0.0, 1e6, None], "y": ["1", "0", "1"]}
    )

    x, _ = spec().encode(frame)

    np.testing.assert_array_equal(x, [[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])


def test_encode_orders_labels_by_the_spec_classes():
    frame = pl.DataFrame({"age": [1.0, 2.0, 3.0], "glucose": [2.0, 2.0, 2.0], "y": ["b", "c", "a"]})

    _, y = spec(classes=["c", "b", "a"]).encode(frame)

    assert y.tolist() == [1, 0, 2]


def test_encode_rejects_unknown_label_values():
    frame = pl.DataFrame({"age": [1.0, 2.0], "glucose": [2.0, 2.0], "y": [0, 7]})

    with pytest.raises(DataError, match="7"):
        spec().encode(frame)


def test_encode_rejects_missing_columns():
    with pytest.raises(DataError, match="glucose"):
        spec().encode(pl.DataFrame({"age": [1.0], "y": [0]}))


def test_encode_never_returns_nan():
    frame = pl.DataFrame({"age": [float("nan"), 3.0], "glucose": [2.0, 2.0], "y": [0, 1]})

    x, _ = spec().encode(frame)

    assert np.all(np.isfinite(x))


def test_merge_takes_majority_features_and_unions_ranges_and_classes():
    a = spec(lows=[0.0, 1.0], highs=[100.0, 500.0], classes=["0", "1"])
    b = spec(lows=[10.0, 0.5], highs=[120.0, 400.0], classes=["1", "2", "10"])
    odd = FeatureSpec(["age", "bmi"], [0.0, 10.0], [130.0, 60.0], "y", ["0", "1"])

    merged, disagreeing = FeatureSpec.merge([a, odd, b])

    assert disagreeing == [1]
    assert merged.features == ["age", "glucose"]
    assert merged.scales == ["linear", "log"]
    assert merged.label == "y"
    assert merged.lows == [0.0, 0.5]
    assert merged.highs == [120.0, 500.0]  # the odd spec's 130 is not taken
    assert merged.classes == ["0", "1", "2", "10"]  # numeric classes sort numerically


def test_merge_of_agreeing_specs_has_no_disagreement():
    merged, disagreeing = FeatureSpec.merge([spec(), spec()])

    assert disagreeing == []
    assert merged == spec()


def test_merge_of_nothing_raises():
    with pytest.raises(DataError):
        FeatureSpec.merge([])


def test_json_round_trip():
    original = spec(classes=["no", "yes"])

    copy = FeatureSpec.from_json(original.to_json())

    assert copy == original
    assert copy.shape == original.shape


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"lows": [0.0, 5.0], "highs": [120.0, 5.0]}, "glucose"),
        ({"lows": [130.0, 1.0]}, "age"),
        ({"classes": ["only"]}, "two classes"),
        ({"classes": []}, "two classes"),
        ({"features": [], "lows": [], "highs": []}, "no features"),
        ({"lows": [0.0]}, "length"),
        ({"scales": ["linear", "cubic"]}, "cubic"),
    ],
)
def test_invalid_specs_raise(overrides, match):
    with pytest.raises(DataError, match=match):
        spec(**overrides)


def test_category_indicators_encode_one_hot():
    onehot = FeatureSpec(
        ["cp=1", "cp=2", "age"], [0.0, 0.0, 0.0], [1.0, 1.0, 100.0], "y", ["0", "1"]
    )
    frame = pl.DataFrame({"cp": ["1", "2", None], "age": [50.0, 0.0, 100.0], "y": [0, 1, 0]})

    x, y = onehot.encode(frame)

    assert x[:, 0].tolist() == [1.0, -1.0, 0.0]  # present, absent, unknown (midpoint)
    assert x[:, 1].tolist() == [-1.0, 1.0, 0.0]
    assert x[:, 2].tolist() == [0.0, -1.0, 1.0]
    assert y.tolist() == [0, 1, 0]
