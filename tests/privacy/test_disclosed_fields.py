"""Every field of every reply a real site sends is listed, with its protection.

The replies are built by the real ClientApp from a real site (the demo's data,
prepared into Delta tables): profile, moments, statistics, train, evaluate and a
refusal. A field the table does not list fails the test; so does a field that the
table calls suppressed but that carries a value.
"""

from __future__ import annotations

import math

import pytest
from flwr.app import ConfigRecord, Context, RecordDict

from client.app import make_client_app
from common import keys
from common.disclosed_fields import FIELDS, Protection, protection
from common.errors import WireError
from common.features import FeatureSpec
from common.wire.messages import REPLIES
from tests.privacy.conftest import incoming, make_site, moments_message, train_message


def _fields(reply) -> list[tuple[str, str, object]]:
    content = reply.content
    found = []
    for name, record in content.array_records.items():
        found += [(name, key, None) for key in record]
    for records in (content.metric_records, content.config_records):
        for name, record in records.items():
            found += [(name, key, value) for key, value in record.items()]
    return found


@pytest.fixture
def replies(tmp_path, dataset) -> list:
    site = make_site(tmp_path, dataset)
    config_path = str(site.config.base_dir / "site.toml")
    context = Context(1, 1, {"site-config": config_path}, RecordDict(), {})
    app = make_client_app()
    spec, _ = FeatureSpec.merge([site.declared_spec()])
    statistics = ConfigRecord(
        {keys.RELEASE: keys.STATISTICS, keys.FEATURE_SPEC: spec.to_json(), keys.RUN_ID: "r"}
    )
    profile = ConfigRecord({keys.RUN_ID: "r"})
    train = train_message(site, run_id="r")

    def evaluate_message(**changes) -> object:
        config = ConfigRecord({**dict(train.content[keys.CONFIG]), **changes})
        content = RecordDict({keys.ARRAYS: train.content[keys.ARRAYS], keys.CONFIG: config})
        return incoming(content, "evaluate")

    wrong = FeatureSpec(["no-such-column"], [0.0], [1.0], spec.label, spec.classes)
    evaluate = evaluate_message(**{keys.EXPLAIN: True})
    evaluate.content[keys.CHAMPION_ARRAYS] = train.content[keys.ARRAYS]  # champion/challenger
    refused = evaluate_message(**{keys.FEATURE_SPEC: wrong.to_json()})
    return [
        app(incoming(RecordDict({keys.CONFIG: profile}), "query"), context),
        app(moments_message(site, run_id="r"), context),
        app(incoming(RecordDict({keys.CONFIG: statistics}), "query"), context),
        app(train, context),
        app(evaluate, context),
        app(refused, context),
    ]


def test_every_field_a_site_sends_is_classified(replies):
    unlisted = [
        (record, key)
        for reply in replies
        for record, key, _ in _fields(reply)
        if protection(record, key) is None
    ]
    assert unlisted == []
    records = {record for reply in replies for record, _, _ in _fields(reply)}
    every_kind = {keys.ARRAYS, keys.METRICS, keys.MOMENTS, keys.STATISTICS, keys.PROFILE}
    assert every_kind | {keys.ASSESSMENT, keys.EXCLUDED, keys.SITE} <= records


def test_suppressed_fields_carry_no_value(replies):
    for reply in replies:
        for record, key, value in _fields(reply):
            if protection(record, key) is Protection.SUPPRESSED:
                assert isinstance(value, float) and math.isnan(value), (record, key, value)


def test_a_field_the_table_does_not_know_is_caught():
    assert protection(keys.METRICS, "rows-with-label-1") is None
    assert protection(keys.ARRAYS, "anything") is Protection.DP


def test_every_reply_a_site_sends_validates_against_its_contract(replies):
    for reply in replies:
        read = [_validates(contract, reply.content) for contract in REPLIES]
        assert any(read), list(reply.content.keys())


def _validates(contract, content) -> bool:
    try:
        contract.read(content)
    except WireError:
        return False
    return True


def test_no_field_stays_open_and_row_counts_are_coarse(replies):
    assert [key for key, privacy in FIELDS.items() if privacy is Protection.OPEN] == []
    counts = [
        value
        for reply in replies
        for record, key, value in _fields(reply)
        if key == keys.NUM_EXAMPLES
    ]
    assert counts and all(int(c) % 10 == 0 and c >= 10 for c in counts), counts  # k = 10


def test_with_privacy_on_metrics_come_from_held_out_rows(replies):
    evaluate = replies[4]
    assert str(evaluate.content[keys.SITE]["eval-split"]) == "test"
    for name in ("accuracy", "f1"):  # 12 held-out rows, k = 10: a step of 10/12, at most 1
        value = float(evaluate.content[keys.METRICS][name])
        assert min(abs(value), abs(value - 10 / 12)) < 1e-9, (name, value)
