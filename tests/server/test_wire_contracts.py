"""The coordinator reads every reply through its wire contract.

A reply that does not validate excludes its site for the round, with the validation
error as the reason; the merge functions refuse malformed input with a DataError.
"""

from __future__ import annotations

import json
import math

import pytest
from flwr.app import ConfigRecord, MetricRecord, RecordDict

from common import keys
from common.errors import DataError, WireError
from common.features import FeatureSpec
from common.moments import merge_moments
from common.wire.messages import (
    MAX_JSON,
    EvaluateReply,
    ExcludedRecord,
    Exclusion,
    SiteName,
    StatisticsReply,
    TrainReply,
)
from server.drift import statistics_record
from server.fairness import merge_fairness, merge_importance
from server.federation import Federation
from server.metrics import weighted_mean_ignoring_nan
from server.replies import shapes
from server.round_report import RoundReport
from tests.wire_replies import (
    SHAPES,
    arrays,
    evaluate_content,
    histograms,
    reply,
    site_record,
    train_content,
)


def _with(content: RecordDict, record: str, **changes) -> RecordDict:
    kind = MetricRecord if record == keys.METRICS else ConfigRecord
    changed = RecordDict(dict(content.items()))
    changed[record] = kind({**dict(content[record]), **changes})
    return changed


MALFORMED = {
    "wrong type": lambda c: _with(c, keys.METRICS, **{keys.NUM_EXAMPLES: 4.5}),
    "NaN epsilon": lambda c: _with(c, keys.METRICS, **{keys.EPSILON: math.nan}),
    "unknown field": lambda c: _with(c, keys.METRICS, **{"rows-with-label-1": 3}),
    "oversized field": lambda c: _with(
        c, keys.SITE, **{keys.PURGED_VERSIONS: " " * MAX_JSON + "[]"}
    ),
    "NaN in update": lambda c: _with_arrays(c, math.nan),
    "wrong shape": lambda c: _with_arrays(c, None),
    "unknown record": lambda c: RecordDict({**dict(c.items()), "extra": ConfigRecord({"a": 1})}),
}


def _with_arrays(content: RecordDict, value: float | None) -> RecordDict:
    changed = RecordDict(dict(content.items()))
    if value is None:
        import torch
        from flwr.app import ArrayRecord

        changed[keys.ARRAYS] = ArrayRecord({"weight": torch.zeros(3, 3), "bias": torch.zeros(2)})
    else:
        changed[keys.ARRAYS] = arrays(value)
    return changed


@pytest.mark.parametrize("malformation", sorted(MALFORMED))
def test_one_malformed_update_excludes_just_that_site(malformation):
    good = [reply(train_content(f"site-00{i}"), node=i + 1) for i in (0, 1, 3)]
    bad = reply(MALFORMED[malformation](train_content("site-002")), node=3)
    report = RoundReport(1, 3)
    updates = Federation.sort_replies([*good, bad], report, {"shapes": shapes(arrays())})
    assert [str(u.content[keys.SITE][keys.SITE_NAME]) for u in updates] == [
        "site-000",
        "site-001",
        "site-003",
    ]
    assert [p["site"] for p in report.participants] == ["site-000", "site-001", "site-003"]
    assert len(report.excluded) == 1
    assert report.excluded[0]["site"] == "site-002"
    assert report.excluded[0]["reason"].startswith("invalid reply: train reply: ")


def test_a_reply_without_a_readable_site_is_named_by_its_node():
    content = RecordDict(dict(train_content("x").items()))
    del content[keys.SITE]
    report = RoundReport(1, 3)
    assert Federation.sort_replies([reply(content, node=7)], report) == []
    assert report.excluded[0]["site"] == "node 7"
    assert "site" in report.excluded[0]["reason"]


def test_a_refusal_is_recorded_with_its_reason():
    refusal = Exclusion(excluded=ExcludedRecord(reason="quality gate"), site=SiteName(name="s"))
    report = RoundReport(1, 3)
    assert Federation.sort_replies([reply(refusal.to_content(), node=1)], report) == []
    assert report.excluded == [{"site": "s", "reason": "quality gate"}]


def test_a_valid_reply_round_trips():
    read = TrainReply.read(train_content("site-000"), {"shapes": SHAPES})
    assert read.site.name == "site-000" and read.metrics.num_examples == 40
    assert EvaluateReply.read(evaluate_content("s")).metrics.accuracy == 0.8


def test_a_fairness_record_that_does_not_parse_is_refused():
    for fairness in ("{not json", json.dumps({"n_rows": 3, "columns": {}, "x": 1})):
        content = _with(evaluate_content("s"), keys.ASSESSMENT, **{keys.FAIRNESS: fairness})
        with pytest.raises(WireError, match="fairness"):
            EvaluateReply.read(content)


def _statistics(histogram: str) -> RecordDict:
    data = {
        "version": 1,
        "histograms": histogram,
        "previous_version": None,
        "previous_histograms": None,
        "quality": {},
    }
    return RecordDict(
        {
            keys.STATISTICS: ConfigRecord({keys.STATISTICS: json.dumps(data)}),
            keys.SITE: site_record("s").to_record(),
        }
    )


def test_a_histogram_with_the_wrong_bins_is_refused():
    spec = FeatureSpec(["age"], [0.0], [100.0], "y", ["0", "1"])
    StatisticsReply.read(_statistics(histograms(["0", "9", "__other__"])), {"spec": spec})
    for bins in (["0", "10"], ["0", "-1"], ["a", "3"]):
        with pytest.raises(WireError, match="age"):
            StatisticsReply.read(_statistics(histograms(bins)), {"spec": spec})


def test_merge_moments_refuses_malformed_releases():
    good = {"count": 50.0, "sums": [1.0, 2.0], "squares": []}
    assert merge_moments([good, good])[0]
    for bad in (
        {"count": 50.0, "sums": [1.0, math.nan], "squares": []},
        {"count": 50.0, "sums": [1.0]},
        {"count": "50", "sums": [1.0, 2.0], "squares": []},
        {"count": 50.0, "sums": [1.0, 2.0], "squares": [1.0]},
    ):
        with pytest.raises(DataError, match="moments"):
            merge_moments([good, bad])
    with pytest.raises(DataError, match="number of features"):
        merge_moments([good, {"count": 5.0, "sums": [1.0], "squares": []}])


def test_merge_fairness_and_importance_refuse_malformed_input():
    with pytest.raises(DataError):
        merge_fairness({"a": "{not json"})
    bad_name = json.loads(json.dumps({"n_rows": 5, "columns": {}}))
    bad_name["columns"]["no-group"] = {"kind": "categorical", "counts": {"a": 5}}
    with pytest.raises(DataError, match="column=group"):
        merge_fairness({"a": json.dumps(bad_name)})
    for text in ("[1, 2]", "{not json", json.dumps({"age": "high"})):
        with pytest.raises(DataError, match="importance"):
            merge_importance({"a": (text, 10)})


def test_weighted_mean_refuses_metrics_without_a_weight():
    good = RecordDict({"m": MetricRecord({keys.NUM_EXAMPLES: 10, "accuracy": 0.5})})
    assert weighted_mean_ignoring_nan([good], keys.NUM_EXAMPLES)["accuracy"] == 0.5
    bad = RecordDict({"m": MetricRecord({"accuracy": 0.5})})
    with pytest.raises(DataError, match="num-examples"):
        weighted_mean_ignoring_nan([good, bad], keys.NUM_EXAMPLES)


def test_drift_statistics_that_do_not_parse_are_recorded_not_fatal():
    spec = FeatureSpec(["age"], [0.0], [100.0], "y", ["0", "1"])
    statistics = {"s": {"histograms": "{broken", "previous_histograms": None}}
    record = statistics_record(statistics, spec, 0.2)
    assert record["drift"] is None and "JSON" in record["error"]
