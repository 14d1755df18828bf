"""Ingest, clean and prepare a site's raw CSV into versioned Delta tables."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from client.pipeline.pipeline import clean, ingest
from client.pipeline.prepare import prepare
from client.store import SiteStore
from common.config import SiteConfig, load_site_config
from common.errors import DataError

SITE_TOML = """
[site]
name = "clinic-a"
raw = "{raw}"

[schema]
missing = ["", "NA", "?"]

[schema.columns.id]
type = "int"
role = "id"

[schema.columns.age]
type = "int"
min = 0
max = 120
missing = ["-9"]

[schema.columns.glucose]
type = "float"
min = 1.0
max = 600.0

[schema.columns.outcome]
type = "int"
role = "label"
values = ["0", "1"]

[cleaning]
impute = "{impute}"

[quality]
min_rows = 5
"""

# Row 2 and 4 miss age ('NA', the column's own '-9'), row 3 misses glucose ('?'),
# row 5 is out of range (age 200) and written twice, row 6 has no label, row 8's
# glucose (700) is out of range.
RAW_CSV = """id,age,glucose,outcome
1,34,90.5,0
2,NA,120.0,1
3,50,?,0
4,-9,80.0,1
5,200,100.0,0
5,200,100.0,0
6,40,95.0,
7,60,110.0,1
8, 45 ,700,0
"""


def make_site(
    tmp_path: Path, csv: str = RAW_CSV, raw: str = "raw/data.csv", impute: str = "center"
) -> SiteConfig:
    raw_path = tmp_path / "raw" / "data.csv"
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    raw_path.write_text(csv, encoding="utf-8")
    toml = tmp_path / "site.toml"
    toml.write_text(SITE_TOML.format(raw=raw, impute=impute), encoding="utf-8")
    return load_site_config(toml)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ingest_types_columns_and_applies_missing_markers(tmp_path):
    frame = ingest(make_site(tmp_path))

    assert frame.columns == ["id", "age", "glucose", "outcome"]
    assert frame.schema["id"] == pl.Int64
    assert frame.schema["age"] == pl.Int64
    assert frame.schema["glucose"] == pl.Float64
    assert frame.schema["outcome"] == pl.Int64
    assert frame.height == 9
    assert frame["age"].to_list() == [34, None, 50, None, 200, 200, 40, 60, 45]
    assert frame["glucose"].to_list() == [90.5, 120.0, None, 80.0, 100.0, 100.0, 95.0, 110.0, 700.0]
    assert frame["outcome"].null_count() == 1


def test_ingest_reads_every_file_of_a_directory(tmp_path):
    config = make_site(tmp_path, raw="raw")
    (tmp_path / "raw" / "more.csv").write_text("id,age,glucose,outcome\n9,30,99.0,1\n")
    (tmp_path / "raw" / "notes.md").write_text("not data")

    frame = ingest(config)

    assert frame.height == 10
    assert frame["id"].to_list()[-1] == 9


def test_clean_dedupes_drops_unlabeled_imputes_and_clips(tmp_path):
    config = make_site(tmp_path, impute="median")  # cleaning alone: no gate, no DP

    frame, report = clean(ingest(config), config)

    assert report.rows_read == 9
    assert report.duplicates_dropped == 1
    assert report.unlabeled_dropped == 1
    assert report.rows_clean == frame.height == 7
    assert report.imputed == {"age": 2, "glucose": 1}
    assert report.clipped == {"age": 1, "glucose": 1}
    assert frame["id"].to_list() == [1, 2, 3, 4, 5, 7, 8]
    # Medians of the labeled, deduplicated rows (before clipping).
    assert frame["age"].to_list() == [34, 50, 50, 50, 120, 60, 45]
    assert frame["glucose"].to_list() == [90.5, 120.0, 105.0, 80.0, 100.0, 110.0, 600.0]
    assert frame.null_count().row(0) == (0, 0, 0, 0, 0)
    # Without a provenance column the row id is the schema's id column.
    assert frame["_row_id"].to_list() == [str(i) for i in frame["id"].to_list()]


def test_clean_with_drop_removes_incomplete_rows(tmp_path):
    config = make_site(tmp_path, impute="drop")

    frame, report = clean(ingest(config), config)

    assert report.incomplete_dropped == 3
    assert report.imputed == {}
    assert frame["id"].to_list() == [1, 5, 7, 8]


def test_a_row_dependent_cleaning_fails_the_gate_only_with_privacy_on(tmp_path):
    config = make_site(tmp_path, impute="median")
    reasons = prepare(config).gate_reasons
    assert len(reasons) == 1 and reasons[0].startswith("cleaning.impute = 'median' makes")

    without_privacy = config.model_copy(
        update={"privacy": config.privacy.model_copy(update={"enabled": False})}
    )
    assert prepare(without_privacy).gate_passed


def test_prepare_writes_raw_and_clean_tables_with_lineage(tmp_path):
    config = make_site(tmp_path)
    raw_file = tmp_path / "raw" / "data.csv"

    result = prepare(config)

    store = SiteStore(config.store_dir)
    assert not result.unchanged
    assert result.gate_passed
    assert result.report.duplicates_dropped == 1
    assert store.read("raw").height == 9
    assert store.read("clean").height == 7
    raw_lineage = store.latest("raw").lineage
    clean_lineage = store.latest("clean").lineage
    assert raw_lineage["operation"] == "ingest"
    assert raw_lineage["rows"] == "9"
    assert clean_lineage["operation"] == "clean"
    assert clean_lineage["rows"] == "7"
    assert clean_lineage["raw_version"] == "0"
    assert len(clean_lineage["config_hash"]) == 16
    assert clean_lineage["config_hash"] == raw_lineage["config_hash"]
    inputs = json.loads(clean_lineage["inputs"])
    assert list(inputs.values()) == [sha256(raw_file)]
    assert Path(next(iter(inputs))).resolve() == raw_file.resolve()


def test_prepare_never_modifies_the_raw_file(tmp_path):
    config = make_site(tmp_path)
    raw_file = tmp_path / "raw" / "data.csv"
    before = sha256(raw_file)

    prepare(config)

    assert sha256(raw_file) == before
    assert raw_file.read_text(encoding="utf-8") == RAW_CSV


def test_prepare_twice_on_unchanged_input_commits_nothing(tmp_path):
    config = make_site(tmp_path)
    first = prepare(config)

    second = prepare(config)

    assert second.unchanged
    assert second.clean.version == first.clean.version == 0
    assert SiteStore(config.store_dir).latest("raw").version == 0
    assert second.report.rows_clean == 7


def test_changed_raw_file_makes_a_new_version_and_keeps_the_old(tmp_path):
    config = make_site(tmp_path)
    prepare(config)
    (tmp_path / "raw" / "data.csv").write_text(RAW_CSV + "9,70,130.0,1\n", encoding="utf-8")

    result = prepare(config)

    store = SiteStore(config.store_dir)
    assert not result.unchanged
    assert result.clean.version == 1
    assert result.clean.lineage["parent_version"] == "0"
    assert store.read("clean").height == 8
    assert store.read("clean", version=0).height == 7
    assert 9 not in store.read("clean", version=0)["id"].to_list()


def test_changed_config_makes_a_new_version(tmp_path):
    make_site(tmp_path)
    prepare(load_site_config(tmp_path / "site.toml"))
    changed = make_site(tmp_path, impute="mean")

    result = prepare(changed)

    assert not result.unchanged
    assert result.clean.version == 1


def test_gate_reports_too_few_rows(tmp_path):
    config = make_site(tmp_path, csv="id,age,glucose,outcome\n1,30,90.0,0\n2,40,95.0,1\n")

    result = prepare(config)

    assert not result.gate_passed
    assert any("min_rows=5" in reason for reason in result.gate_reasons)


@pytest.mark.parametrize("raw", ["raw/absent.csv", "no-such-dir", "raw/*.parquet"])
def test_missing_raw_data_names_the_path(tmp_path, raw):
    config = make_site(tmp_path, raw=raw)

    with pytest.raises(DataError) as caught:
        ingest(config)

    assert raw.split("/")[-1] in str(caught.value)


def test_empty_file_is_a_data_error(tmp_path):
    config = make_site(tmp_path, csv="")

    with pytest.raises(DataError, match="data.csv"):
        ingest(config)


def test_header_only_file_is_a_data_error(tmp_path):
    config = make_site(tmp_path, csv="id,age,glucose,outcome\n")

    with pytest.raises(DataError, match="no rows"):
        prepare(config)


def test_header_lacking_a_schema_column_names_the_file(tmp_path):
    config = make_site(tmp_path, csv="id,age,outcome\n1,30,0\n")

    with pytest.raises(DataError) as caught:
        ingest(config)

    assert str(tmp_path / "raw" / "data.csv") in str(caught.value)
    assert "glucose" in str(caught.value)


def test_ingest_types_bool_columns(tmp_path):
    make_site(tmp_path, csv="id,age,glucose,outcome,smoker\n1,30,90.0,0,true\n")
    toml = (tmp_path / "site.toml").read_text()
    (tmp_path / "site.toml").write_text(toml + '\n[schema.columns.smoker]\ntype = "bool"\n')
    config = load_site_config(tmp_path / "site.toml")

    frame = ingest(config)

    assert frame["smoker"].to_list() == [True]


def test_ingest_types_datetime_columns(tmp_path):
    csv = "id,age,glucose,outcome,seen\n1,30,90.0,0,2024-01-02\n"
    make_site(tmp_path, csv=csv)
    toml = (tmp_path / "site.toml").read_text()
    (tmp_path / "site.toml").write_text(
        toml + '\n[schema.columns.seen]\ntype = "datetime"\nrole = "timestamp"\n'
    )
    config = load_site_config(tmp_path / "site.toml")

    frame = ingest(config)

    assert frame.schema["seen"] == pl.Datetime


def test_nan_text_is_imputed_like_a_missing_value(tmp_path):
    config = make_site(tmp_path, csv=RAW_CSV.replace("1,34,90.5,0", "1,34,NaN,0"))

    frame, report = clean(ingest(config), config)

    assert report.imputed.get("glucose") == 2
    assert not frame["glucose"].is_nan().any()
