"""Validation with quarantine, the cleaning options, the quality gate and ``prepare``'s tables.

Unit tests, in-process: each builds a site config in memory over raw files in
``tmp_path`` and checks exact rows, reasons and counts.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from client.pipeline import pipeline
from client.pipeline.clean import clean
from client.pipeline.ingest import LINE, SOURCE, read_raw
from client.pipeline.prepare import gate, prepare
from client.pipeline.validate import REASON, Validated, validate
from client.privacy.pseudonyms import pseudonym, site_key
from client.store import SiteStore
from common.config import SiteConfig
from common.errors import ConfigError, DataError

# id, age (int, 0..120), glucose (float, 1..600), outcome (the 0/1 label).
COLUMNS: dict[str, dict[str, Any]] = {
    "id": {"type": "int", "role": "id"},
    "age": {"type": "int", "min": 0, "max": 120},
    "glucose": {"type": "float", "min": 1.0, "max": 600.0},
    "outcome": {"type": "int", "role": "label", "values": ["0", "1"]},
}
HEADER = "id,age,glucose,outcome"


def site(
    tmp_path: Path,
    text: str | bytes | None = None,
    *,
    raw: str = "data.csv",
    columns: dict[str, dict[str, Any]] | None = None,
    extra_columns: dict[str, dict[str, Any]] | None = None,
    schema: dict[str, Any] | None = None,
    cleaning: dict[str, Any] | None = None,
    quality: dict[str, Any] | None = None,
) -> SiteConfig:
    """A site config over ``tmp_path``; ``text`` (if given) becomes the raw file ``raw``."""
    if text is not None:
        path = tmp_path / raw
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    data = {
        "site": {"name": "unit", "raw": raw, "store": "store"},
        "schema": {"columns": {**(columns or COLUMNS), **(extra_columns or {})}, **(schema or {})},
        "cleaning": cleaning or {},
        "quality": {"min_rows": 1, **(quality or {})},
        "base_dir": tmp_path,
    }
    return SiteConfig.model_validate(data)


def csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def validated(config: SiteConfig) -> Validated:
    return validate(
        read_raw(config), config.schema, reject_out_of_range=config.cleaning.outliers == "reject"
    )


def quarantined(result: Validated) -> list[dict[str, Any]]:
    return result.quarantine.sort(LINE).to_dicts()


# --- validation and quarantine -------------------------------------------------------------


def test_unparseable_value_is_quarantined_with_its_text_source_and_line(tmp_path):
    config = site(tmp_path, csv("1,34,90.5,0", "2, abc ,120.0,1", "3,50,80.0,0"))

    result = validated(config)

    assert quarantined(result) == [
        {
            "id": "2",
            "age": " abc ",  # the original text, not the stripped or typed value
            "glucose": "120.0",
            "outcome": "1",
            SOURCE: "data.csv",
            LINE: 3,  # header = line 1
            REASON: "age: not int",
        }
    ]
    assert result.rejected == {"age: not int": 1}
    assert result.valid["id"].to_list() == [1, 3]
    assert result.valid["age"].to_list() == [34, 50]
    assert result.valid.schema["age"] == pl.Int64


def test_line_numbers_count_from_the_header_in_every_file(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.csv").write_text(csv("1,30,90.0,0", "2,31,91.0,1"))
    (folder / "b.csv").write_text(csv("3,32,92.0,0", "4,x,93.0,1", "5,y,94.0,0"))
    config = site(tmp_path, raw="raw")

    result = validated(config)

    rows = [(r[SOURCE], r[LINE], r["id"]) for r in quarantined(result)]
    assert rows == [("b.csv", 3, "4"), ("b.csv", 4, "5")]
    assert result.valid["id"].to_list() == [1, 2, 3]


def test_value_outside_the_allowed_values_is_quarantined(tmp_path):
    config = site(tmp_path, csv("1,34,90.5,0", "2,40,99.0,2", "3,41,98.0,1.0", "4,42,97.0,yes"))

    result = validated(config)

    reasons = {r["id"]: r[REASON] for r in quarantined(result)}
    # '1.0' is the allowed int 1; '2' is an int but not allowed; 'yes' is not an int at all.
    assert reasons == {"2": "outcome: value not allowed", "4": "outcome: not int"}
    assert result.valid["outcome"].to_list() == [0, 1]
    assert result.rejected == {"outcome: value not allowed": 1, "outcome: not int": 1}


def test_required_column_that_is_null_is_quarantined(tmp_path):
    columns = {**COLUMNS, "glucose": {**COLUMNS["glucose"], "required": True}}
    config = site(
        tmp_path,
        csv("1,34,90.5,0", "2,40,NA,1", "3,41,,0", "4,,97.0,1", "5,zz,?,0"),
        columns=columns,
    )

    result = validated(config)

    reasons = {r["id"]: r[REASON] for r in quarantined(result)}
    assert reasons == {
        "2": "glucose: missing",
        "3": "glucose: missing",
        "5": "age: not int; glucose: missing",  # every broken column is named
    }
    # A missing value in a column that is not required is kept (to impute later).
    assert result.valid["id"].to_list() == [1, 4]
    assert result.valid["age"].to_list() == [34, None]
    assert result.rejected == {"glucose: missing": 3, "age: not int": 1}


def test_ints_written_as_floats_parse_but_fractions_do_not(tmp_path):
    config = site(tmp_path, csv("1,63.0,90.5,0", "2,63.5,90.5,1", "3,1e2,90.5,0", "4,-0.0,1,1"))

    result = validated(config)

    assert result.valid["id"].to_list() == [1, 3, 4]
    assert result.valid["age"].to_list() == [63, 100, 0]
    assert [(r["age"], r[REASON]) for r in quarantined(result)] == [("63.5", "age: not int")]


def test_large_int_ids_parse_exactly(tmp_path):
    """Ints above 2**53 stay exact (they were parsed through Float64: two ids became one)."""
    config = site(tmp_path, csv("9007199254740993,30,90.0,0", "9007199254740992,31,91.0,1"))

    result = validated(config)

    assert result.valid["id"].to_list() == [9007199254740993, 9007199254740992]


def test_a_column_of_the_wrong_type_is_a_data_error_naming_file_column_and_line(tmp_path):
    columns = {**COLUMNS, "ward": {"type": "float"}}
    text = csv("1,34,90.5,0,north", "2,40,99.0,1,3.5", "3,41,98.0,0,south", header=HEADER + ",ward")
    config = site(tmp_path, text, columns=columns)

    with pytest.raises(DataError) as caught:
        validated(config)

    message = str(caught.value)
    assert "data.csv" in message
    assert "'ward'" in message
    assert "float" in message
    assert "line 2" in message and "'north'" in message
    assert "2 of 3" in message
    assert "\n" not in message


def test_a_minority_of_unparseable_values_is_dirty_rows_not_a_wrong_type(tmp_path):
    # 1 of 3 values does not parse: quarantine, not a schema error.
    config = site(tmp_path, csv("1,34,abc,0", "2,40,99.0,1", "3,41,98.0,0"))

    result = validated(config)

    assert result.rejected == {"glucose: not float": 1}


def test_a_float_column_mostly_nan_is_not_a_wrong_type(tmp_path):
    """'NaN' is a float: a column mostly 'NaN' (not a missing marker here) is no mismatch."""
    config = site(
        tmp_path,
        csv("1,34,NaN,0", "2,40,NaN,1", "3,41,NaN,0", "4,42,99.0,1"),
        schema={"missing": ["", "NA"]},
    )

    result = validated(config)

    assert result.valid.height == 4
    assert result.valid["glucose"].null_count() == 3


def ids_as_stored(config):
    """An id -> its pseudonym, as the site's store holds it."""
    key = site_key(config.store_dir)
    return lambda value: pseudonym(key, value)


def test_outliers_reject_quarantines_out_of_range_rows(tmp_path):
    text = csv("1,34,90.5,0", "2,200,99.0,1", "3,-1,98.0,0", "4,41,700,1", "5,120,600,0")
    config = site(tmp_path, text, cleaning={"outliers": "reject"})

    result = pipeline.run(config)

    stored = ids_as_stored(config)
    reasons = {r["id"]: r[REASON] for r in quarantined(result.validated)}
    assert reasons == {
        stored(2): "age: out of range",
        stored(3): "age: out of range",
        stored(4): "glucose: out of range",
    }
    assert result.report.rejected == {"age: out of range": 2, "glucose: out of range": 1}
    # The bounds themselves are in range; nothing is left to clip.
    assert result.clean["id"].to_list() == [stored(1), stored(5)]
    assert result.report.clipped == {}


def test_out_of_range_rows_are_kept_without_reject(tmp_path):
    config = site(tmp_path, csv("1,34,90.5,0", "2,200,99.0,1"), cleaning={"outliers": "none"})

    result = validated(config)

    assert result.quarantine.height == 0
    assert result.valid["age"].to_list() == [34, 200]


def test_bool_values_parse_and_others_are_quarantined(tmp_path):
    values = ["yes", "no", "1", "0", "TRUE", "f", "Y", "maybe"]
    rows = [f"{i},30,90.0,{i % 2},{v}" for i, v in enumerate(values)]
    config = site(
        tmp_path,
        csv(*rows, header=HEADER + ",smoker"),
        extra_columns={"smoker": {"type": "bool"}},
    )

    result = validated(config)

    assert result.valid.schema["smoker"] == pl.Boolean
    assert result.valid["smoker"].to_list() == [True, False, True, False, True, False, True]
    assert [(r["smoker"], r[REASON]) for r in quarantined(result)] == [
        ("maybe", "smoker: not bool")
    ]


def test_datetime_values_parse_and_others_are_quarantined(tmp_path):
    rows = ["1,30,90.0,0,2024-01-02", "2,31,91.0,1,2024-01-03 10:30:00", "3,32,92.0,0,yesterday"]
    config = site(
        tmp_path,
        csv(*rows, header=HEADER + ",seen"),
        extra_columns={"seen": {"type": "datetime", "role": "timestamp"}},
    )

    result = validated(config)

    assert isinstance(result.valid.schema["seen"], pl.Datetime)
    assert result.valid["seen"].to_list() == [
        datetime(2024, 1, 2),
        datetime(2024, 1, 3, 10, 30),
    ]
    assert [(r[LINE], r[REASON]) for r in quarantined(result)] == [(4, "seen: not datetime")]


def test_json_lines_raw_files_are_read_and_validated(tmp_path):
    lines = [
        {"id": 1, "age": 34, "glucose": 90.5, "outcome": 0},
        {"id": 2, "age": "abc", "glucose": 99, "outcome": 1},
        {"id": 3, "age": 63.0, "glucose": None, "outcome": 1},
        {"id": 4, "glucose": 80.25, "outcome": 0, "note": "no age key"},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    config = site(tmp_path, text, raw="data.jsonl")

    result = validated(config)

    assert result.valid["id"].to_list() == [1, 3, 4]
    assert result.valid["age"].to_list() == [34, 63, None]
    assert result.valid["glucose"].to_list() == [90.5, None, 80.25]
    # JSON lines have no header: the first object is line 1.
    assert [(r[SOURCE], r[LINE], r["age"], r[REASON]) for r in quarantined(result)] == [
        ("data.jsonl", 2, "abc", "age: not int")
    ]


def test_parquet_raw_files_are_read_and_validated(tmp_path):
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "age": [34.0, 63.5, None],
            "glucose": [90.5, 99.0, 80.0],
            "outcome": ["0", "1", "5"],
            "extra": ["a", "b", "c"],
        }
    )
    frame.write_parquet(tmp_path / "data.parquet")
    config = site(tmp_path, raw="data.parquet")

    result = validated(config)

    assert result.valid.columns == [*COLUMNS, SOURCE, LINE]
    assert result.valid["id"].to_list() == [1]
    assert result.valid["age"].to_list() == [34]
    assert [(r[SOURCE], r[LINE], r[REASON]) for r in quarantined(result)] == [
        ("data.parquet", 2, "age: not int"),
        ("data.parquet", 3, "outcome: value not allowed"),
    ]


# --- cleaning ------------------------------------------------------------------------------

TIMED = {
    **COLUMNS,
    "seen": {"type": "datetime", "role": "timestamp"},
}
TIMED_HEADER = HEADER + ",seen"


def test_dedupe_id_keeps_the_latest_row_of_each_id(tmp_path):
    rows = [
        "1,30,103.0,0,2024-01-03",  # id 1's latest, read first
        "2,50,200.0,1,2024-01-01",
        "1,30,101.0,0,2024-01-01",
        "1,30,102.0,1,2024-01-02",
        "3,60,300.0,1,2024-01-05",
        "3,60,301.0,1,2024-01-04",
    ]
    config = site(
        tmp_path, csv(*rows, header=TIMED_HEADER), columns=TIMED, cleaning={"dedupe": "id"}
    )

    frame, report = clean(validated(config).valid, config)

    kept = dict(zip(frame["id"].to_list(), frame["glucose"].to_list(), strict=True))
    assert kept == {1: 103.0, 2: 200.0, 3: 300.0}
    assert report.duplicates_dropped == 3
    assert report.rows_clean == 3


def test_dedupe_true_drops_exact_duplicates_only(tmp_path):
    rows = ["1,30,90.0,0", "1,30,90.0,0", "1,31,91.0,1"]
    config = site(tmp_path, csv(*rows), cleaning={"dedupe": True})

    frame, report = clean(validated(config).valid, config)

    assert frame["age"].to_list() == [30, 31]
    assert report.duplicates_dropped == 1


def test_dedupe_false_keeps_duplicates(tmp_path):
    rows = ["1,30,90.0,0", "1,30,90.0,0", "1,31,91.0,1"]
    config = site(tmp_path, csv(*rows), cleaning={"dedupe": False})

    frame, report = clean(validated(config).valid, config)

    assert frame["age"].to_list() == [30, 30, 31]
    assert report.duplicates_dropped == 0
    assert report.rows_clean == 3


# Five labeled rows; age misses one value, glucose one.
IMPUTE_ROWS = ["1,20,10.0,0", "2,20,20.0,1", "3,20,,0", "4,60,60.0,1", "5,,10.0,0"]


@pytest.mark.parametrize(
    ("impute", "extra", "age", "glucose"),
    [
        ("mode", {}, 20, 10.0),  # the most frequent value
        ("mean", {}, 30, 25.0),
        ("median", {}, 20, 15.0),
        ("constant", {"impute_value": -1.0}, -1, -1.0),
    ],
)
def test_impute_fills_missing_features(tmp_path, impute, extra, age, glucose):
    config = site(tmp_path, csv(*IMPUTE_ROWS), cleaning={"impute": impute, **extra})

    frame, report = clean(validated(config).valid, config)

    assert report.imputed == {"age": 1, "glucose": 1}
    assert frame.filter(pl.col("id") == 5)["age"].item() == age
    assert frame.filter(pl.col("id") == 3)["glucose"].item() == glucose
    assert frame.schema["age"] == pl.Int64
    assert frame.null_count().sum_horizontal().item() == 0


def test_impute_drop_removes_incomplete_rows(tmp_path):
    config = site(tmp_path, csv(*IMPUTE_ROWS), cleaning={"impute": "drop"})

    frame, report = clean(validated(config).valid, config)

    assert frame["id"].to_list() == [1, 2, 4]
    assert report.incomplete_dropped == 2
    assert report.imputed == {}


def test_impute_interpolate_is_linear_in_time_within_each_id(tmp_path):
    rows = [
        "1,30,30.0,1,2024-01-03",
        "2,50,100.0,0,2024-01-01",
        "1,30,10.0,0,2024-01-01",
        "1,30,,1,2024-01-02",  # between id 1's 10 and 30
        "2,50,,1,2024-01-02",  # id 2 has no later value: the median is left for it
        "3,40,,0,2024-01-01",  # id 3's only row
        "1,30,,1,2024-01-04",  # id 1's last: nothing after it either
    ]
    config = site(
        tmp_path,
        csv(*rows, header=TIMED_HEADER),
        columns=TIMED,
        cleaning={"impute": "interpolate", "dedupe": False},
    )

    frame, report = clean(validated(config).valid, config)

    # Interpolated: 20; the rest gets the median of (30, 100, 10, 20) = 25.
    assert frame["glucose"].to_list() == [30.0, 100.0, 10.0, 20.0, 25.0, 25.0, 25.0]
    assert frame["id"].to_list() == [1, 2, 1, 1, 2, 3, 1]  # row order kept
    assert report.imputed == {"glucose": 4}


def test_impute_interpolate_fills_a_run_of_missing_values(tmp_path):
    # Two missing values between 10 and 40 of the same id, in time order: 20 and 30.
    rows = [
        "7,30,40.0,1,2024-01-04",
        "7,30,,0,2024-01-02",
        "7,30,10.0,0,2024-01-01",
        "7,30,,1,2024-01-03",
        "8,30,500.0,0,2024-01-02",  # another id's value must not leak in
    ]
    config = site(
        tmp_path,
        csv(*rows, header=TIMED_HEADER),
        columns=TIMED,
        cleaning={"impute": "interpolate", "dedupe": False},
    )

    frame, _ = clean(validated(config).valid, config)

    assert frame["glucose"].to_list() == [40.0, 20.0, 10.0, 30.0, 500.0]


def test_impute_interpolate_keeps_int_columns_int(tmp_path):
    """Interpolated ints are ints again (they used to turn the column into Float64)."""
    rows = ["1,40,90.0,0,2024-01-01", "1,,91.0,1,2024-01-02", "1,50,92.0,0,2024-01-03"]
    config = site(
        tmp_path,
        csv(*rows, header=TIMED_HEADER),
        columns=TIMED,
        cleaning={"impute": "interpolate"},
    )

    frame, _ = clean(validated(config).valid, config)

    assert frame["age"].to_list() == [40, 45, 50]
    assert frame.schema["age"] == pl.Int64


def test_winsorize_clips_to_the_sites_quantiles_and_counts(tmp_path):
    # glucose 0..100 (declared range 0..1000): the 10% / 90% quantiles are 10 and 90.
    rows = [f"{i},30,{i}.0,{i % 2}" for i in range(101)]
    columns = {**COLUMNS, "glucose": {"type": "float", "min": 0.0, "max": 1000.0}}
    config = site(
        tmp_path,
        csv(*rows),
        columns=columns,
        cleaning={"outliers": "winsorize", "winsorize_quantiles": [0.1, 0.9]},
    )

    frame, report = clean(validated(config).valid, config)

    glucose = frame["glucose"].to_list()
    assert min(glucose) == 10.0 and max(glucose) == 90.0
    assert glucose[:12] == [10.0] * 11 + [11.0]
    assert glucose[-12:] == [89.0] + [90.0] * 11
    assert report.clipped == {"glucose": 20}  # age is constant: nothing clipped


def test_winsorize_leaves_bool_features_alone(tmp_path):
    """Bools have no quantiles (polars raised InvalidOperationError on them)."""
    rows = [f"{i},30,{i}.0,{i % 2},{'yes' if i % 3 else 'no'}" for i in range(20)]
    config = site(
        tmp_path,
        csv(*rows, header=HEADER + ",smoker"),
        extra_columns={"smoker": {"type": "bool"}},
        cleaning={"outliers": "winsorize", "winsorize_quantiles": [0.1, 0.9]},
    )

    frame, _ = clean(validated(config).valid, config)

    assert frame["smoker"].to_list() == [bool(i % 3) for i in range(20)]


def test_outliers_none_keeps_out_of_range_values(tmp_path):
    config = site(tmp_path, csv("1,200,700.0,0", "2,30,90.0,1"), cleaning={"outliers": "none"})

    frame, report = clean(validated(config).valid, config)

    assert frame["age"].to_list() == [200, 30]
    assert frame["glucose"].to_list() == [700.0, 90.0]
    assert report.clipped == {}


def test_outliers_clip_clips_to_the_declared_range(tmp_path):
    config = site(tmp_path, csv("1,200,700.0,0", "2,30,0.5,1"), cleaning={"outliers": "clip"})

    frame, report = clean(validated(config).valid, config)

    assert frame["age"].to_list() == [120, 30]
    assert frame["glucose"].to_list() == [600.0, 1.0]
    assert report.clipped == {"age": 1, "glucose": 2}


# --- the quality gate ----------------------------------------------------------------------

GOOD_ROWS = [f"{i},{15 + i},{90 + i}.0,{i % 2}" for i in range(1, 7)]  # ages 16..21


def test_rules_report_how_many_rows_fail(tmp_path):
    config = site(tmp_path, csv(*GOOD_ROWS), quality={"rules": ["age >= 18", "glucose > 0"]})

    result = prepare(config)

    assert not result.gate_passed
    assert result.gate_reasons == ["rule 'age >= 18' fails on 2 row(s)"]
    assert SiteStore(config.store_dir).latest("clean").lineage["gate"] == (
        "rule 'age >= 18' fails on 2 row(s)"
    )


def test_rules_that_hold_pass_the_gate(tmp_path):
    config = site(tmp_path, csv(*GOOD_ROWS), quality={"rules": ["age >= 16 AND glucose < 100"]})

    assert prepare(config).gate_reasons == []


def test_a_rule_that_does_not_parse_is_a_config_error_before_anything_is_written(tmp_path):
    config = site(tmp_path, csv(*GOOD_ROWS), quality={"rules": ["age >= 18", "age >="]})

    with pytest.raises(ConfigError, match="age >="):
        prepare(config)

    assert not (tmp_path / "store" / "tables").exists()
    assert SiteStore(config.store_dir).latest("raw") is None


@pytest.mark.parametrize("rule", ["agee >= 18", "age + 1"])
def test_a_rule_that_cannot_be_evaluated_is_a_config_error(tmp_path, rule):
    """A rule that parses but cannot run (unknown column, not a condition) is a config error."""
    config = site(tmp_path, csv(*GOOD_ROWS), quality={"rules": [rule]})

    with pytest.raises(ConfigError, match="rule"):
        prepare(config)

    assert SiteStore(config.store_dir).latest("raw") is None


def test_max_missing_fraction_fails_the_gate_naming_the_column(tmp_path):
    rows = ["1,30,NA,0", "2,31,NA,1", "3,32,NA,0", "4,,93.0,1", "5,34,94.0,0"]
    config = site(tmp_path, csv(*rows), quality={"max_missing_fraction": 0.5})

    result = prepare(config)

    # glucose misses 3 of 5 (60%), age 1 of 5 (20%, within the limit).
    assert result.gate_reasons == ["glucose: 60% missing, above max_missing_fraction=0.5"]
    assert json.loads(result.clean.lineage["missing"]) == {"age": 0.2, "glucose": 0.6}


def test_missing_fraction_at_the_limit_passes(tmp_path):
    rows = ["1,30,NA,0", "2,31,91.0,1", "3,32,NA,0", "4,33,93.0,1"]
    config = site(tmp_path, csv(*rows), quality={"max_missing_fraction": 0.5})

    assert prepare(config).gate_reasons == []


def test_min_classes(tmp_path):
    config = site(tmp_path, csv("1,30,90.0,0", "2,31,91.0,0", "3,32,92.0,0"))
    frame = pipeline.run(config).clean

    assert gate(frame, config) == ["1 label class(es), fewer than 2"]
    two = site(tmp_path, csv("1,30,90.0,0", "2,31,91.0,1"), quality={"min_classes": 3})
    assert gate(pipeline.run(two).clean, two) == ["2 label class(es), fewer than 3"]
    assert gate(pipeline.run(two).clean, site(tmp_path, quality={"min_classes": 2})) == []


def test_min_rows(tmp_path):
    config = site(tmp_path, csv(*GOOD_ROWS), quality={"min_rows": 7})

    assert prepare(config).gate_reasons == ["6 rows, fewer than min_rows=7"]


# --- prepare: the quarantine table and lineage ---------------------------------------------

DIRTY_ROWS = [
    "1,34,90.5,0",
    "2,abc,120.0,1",
    "3,50,80.0,7",
    "4,51,81.0,1",
    "5,xyz,82.0,0",
    "6,52,83.0,0",
]


def test_prepare_writes_the_quarantine_and_records_it_in_the_lineage(tmp_path):
    config = site(tmp_path, csv(*DIRTY_ROWS))

    result = prepare(config)

    store = SiteStore(config.store_dir)
    quarantine = store.read("quarantine").sort(LINE)
    stored = ids_as_stored(config)
    assert quarantine.select("id", "age", SOURCE, LINE, REASON).rows() == [
        (stored(2), "abc", "data.csv", 3, "age: not int"),
        (stored(3), "50", "data.csv", 4, "outcome: value not allowed"),
        (stored(5), "xyz", "data.csv", 6, "age: not int"),
    ]
    assert store.read("raw").height == 6
    assert store.read("clean")["id"].to_list() == [stored(1), stored(4), stored(6)]
    lineage = store.latest("clean").lineage
    assert lineage["quarantine_version"] == "0"
    assert lineage["raw_version"] == "0"
    assert json.loads(lineage["rejected"]) == {
        "age: not int": 2,
        "outcome: value not allowed": 1,
    }
    assert store.latest("quarantine").lineage["raw_version"] == "0"
    assert store.latest("quarantine").lineage["rows"] == "3"
    assert result.report.rejected == json.loads(lineage["rejected"])
    assert result.report.rows_rejected == 3


def test_a_new_input_makes_new_quarantine_and_clean_versions(tmp_path):
    config = site(tmp_path, csv(*DIRTY_ROWS))
    prepare(config)
    (tmp_path / "data.csv").write_text(csv(*DIRTY_ROWS, "7,bad,1.0,1"))

    result = prepare(config)

    store = SiteStore(config.store_dir)
    assert result.clean.lineage["quarantine_version"] == "1"
    assert result.clean.lineage["raw_version"] == "1"
    assert store.read("quarantine").height == 4
    assert store.read("quarantine", version=0).height == 3


def test_all_rows_rejected_is_a_data_error_and_writes_no_version(tmp_path):
    config = site(tmp_path, csv(*DIRTY_ROWS))
    prepare(config)
    store = SiteStore(config.store_dir)
    tables = ("raw", "quarantine", "clean")
    before = {table: store.latest(table) for table in tables}
    assert all(v is not None and v.version == 0 for v in before.values())
    (tmp_path / "data.csv").write_text(csv("1,abc,90.0,0", "2,40,90.0,5", "3,,x,1"))

    with pytest.raises(DataError) as caught:
        prepare(config)

    message = str(caught.value)
    assert "all 3 rows rejected" in message
    assert "age: not int (1)" in message and "outcome: value not allowed (1)" in message
    assert {table: store.latest(table) for table in tables} == before
    stored = ids_as_stored(config)
    assert store.read("clean")["id"].to_list() == [stored(1), stored(4), stored(6)]
    assert store.read("quarantine").height == 3


def test_category_codes_written_as_floats_match_their_values():
    from client.pipeline.validate import validate
    from common.config import SchemaSection

    schema = SchemaSection.model_validate(
        {
            "columns": {
                "cp": {"type": "category", "values": ["1", "4", "007"]},
                "y": {"type": "int", "role": "label"},
            }
        }
    )
    text = pl.DataFrame(
        {
            "cp": ["4.0", "1", "007", "4.5"],
            "y": ["0", "1", "0", "1"],
            "_source": ["f"] * 4,
            "_line": [2, 3, 4, 5],
        }
    )
    result = validate(text, schema)
    assert result.valid["cp"].to_list() == ["4", "1", "007"]
    assert result.rejected == {"cp: value not allowed": 1}
