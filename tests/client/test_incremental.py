"""Incremental prepare: only new files and grown files' tails are read, and the clean
table is the same set of rows a full prepare of the same inputs gives."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from client.pipeline import pipeline
from client.pipeline.ingest import LINE, SOURCE, read_raw
from client.pipeline.prepare import prepare
from client.privacy.pseudonyms import (
    pseudonymize_frame,
    row_id_pseudonym,
    site_key,
    without_personal,
)
from client.retention import retain as retain_module
from client.retention.erasure import without_erased
from client.retention.retain import retain, without_expired
from client.store import ROW_ID, SiteStore
from common.config import SiteConfig, load_site_config
from tests.client.subject_sites import subject_id, write_subject_site
from tests.client.test_pipeline import SITE_TOML
from tests.client.test_raw_files import without_raw_table
from tests.client.test_retention import request_erasure, store_holds

HEADER = "id,age,glucose,outcome\n"
# Ids 2 and 5 repeat, 5 as an exact duplicate; 6 has no label; 9 is quarantined.
OLD = "1,34,90.5,0\n2,NA,120.0,1\n3,50,?,0\n5,200,100.0,0\n5,200,100.0,0\n6,40,95.0,\n9,x,1,1\n"


def folder_site(tmp_path: Path, *, dedupe: str = "true", impute: str = "center") -> SiteConfig:
    """A site whose raw source is the folder ``raw`` (one file, ``a.csv``, to start)."""
    (tmp_path / "raw").mkdir(parents=True)
    (tmp_path / "raw" / "a.csv").write_text(HEADER + OLD, encoding="utf-8")
    toml = SITE_TOML.format(raw="raw", impute=impute)
    toml = toml.replace("[cleaning]\n", f"[cleaning]\ndedupe = {dedupe}\n")
    (tmp_path / "site.toml").write_text(toml, encoding="utf-8")
    return load_site_config(tmp_path / "site.toml")


def full_clean(config: SiteConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The clean and unlabeled rows a full prepare of the current inputs commits."""
    result = without_expired(config, without_erased(config, pipeline.run(config)))
    return tuple(without_personal(f, config.schema) for f in (result.clean, result.unlabeled))


def stored(config: SiteConfig, value: object) -> str:
    """How the store holds an id (or a row id built from one): its pseudonym."""
    return row_id_pseudonym(site_key(config.store_dir), str(value))


def as_set(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(ROW_ID)


def assert_same_as_full(config: SiteConfig) -> None:
    store = SiteStore(config.store_dir)
    clean, unlabeled = full_clean(config)
    assert clean.height > 0
    assert as_set(store.read("clean")).equals(as_set(clean))
    if store.latest("unlabeled") is not None or unlabeled.height:
        assert as_set(store.read("unlabeled")).equals(
            as_set(unlabeled.cast(dict(store.read("unlabeled").schema)))
        )


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def test_a_new_file_is_all_that_is_read_and_the_result_equals_a_full_prepare(tmp_path):
    config = folder_site(tmp_path)
    first = prepare(config)
    assert not first.incremental and first.clean.lineage["mode"] == "full"
    # b.csv repeats id 2 (new content: '2#2'), duplicates row 5 exactly, adds 7 and an
    # unlabeled 8, and a row to quarantine.
    new = HEADER + "2,33,120.0,1\n5,200,100.0,0\n7,60,110.0,1\n8,45,99.0,\n10,?,bad,0\n"
    (tmp_path / "raw" / "b.csv").write_text(new, encoding="utf-8")

    result = prepare(config)

    assert result.incremental and result.notice == ""
    lineage = result.clean.lineage
    assert lineage["mode"] == "incremental" and lineage["base_version"] == "0"
    b = str(tmp_path / "raw" / "b.csv")
    assert json.loads(lineage["added"]) == [
        {"path": b, "from_byte": 0, "to_byte": len(new), "rows": 5}
    ]
    assert result.report.rows_read == 5 and int(lineage["rows_read"]) == 12
    assert_same_as_full(config)
    store = SiteStore(config.store_dir)
    assert store.read("quarantine").height == 2  # one old, one new
    assert int(lineage["rows"]) == store.read("clean").height
    assert result.gate_passed
    assert prepare(config).unchanged  # and nothing new: no new version


def test_a_grown_file_adds_its_tail_with_the_byte_range_in_the_lineage(tmp_path):
    config = folder_site(tmp_path)
    a = tmp_path / "raw" / "a.csv"
    prepare(config)
    old_size = a.stat().st_size
    append(a, "1,34,90.5,0\n11,70,130.0,1\n3,51,80.0,0\n12,20,800,1\n")

    result = prepare(config)

    assert result.incremental
    added = json.loads(result.clean.lineage["added"])
    assert added == [
        {"path": str(a), "from_byte": old_size, "to_byte": a.stat().st_size, "rows": 4}
    ]
    assert result.report.duplicates_dropped == 1  # row 1 again, as read before
    clean = SiteStore(config.store_dir).read("clean")
    assert set(clean.get_column(ROW_ID)) >= {stored(config, i) for i in ("3", "3#2", "11", "12")}
    assert_same_as_full(config)
    # The raw text table (kept by default) gained the tail's rows, lines counted from
    # the top of the file, as a full read gives them.
    raw = SiteStore(config.store_dir).read("raw").sort(SOURCE, LINE)
    key = site_key(config.store_dir)
    assert raw.equals(pseudonymize_frame(read_raw(config), config.schema, key).sort(SOURCE, LINE))


def test_id_dedupe_keeps_the_latest_row_of_an_id_across_old_and_new_rows(tmp_path):
    config = folder_site(tmp_path, dedupe='"id"')
    prepare(config)
    store = SiteStore(config.store_dir)
    assert store.read("clean").filter(pl.col("id") == stored(config, 3)).get_column(
        "age"
    ).to_list() == [50]
    append(tmp_path / "raw" / "a.csv", "3,52,81.0,1\n6,41,96.0,1\n")

    result = prepare(config)

    assert result.incremental and int(result.clean.lineage["replaced"]) == 2
    clean = store.read("clean")
    assert clean.filter(pl.col("id") == stored(config, 3)).get_column("age").to_list() == [52]
    # 6 was unlabeled; its latest row has a label: it moves to the clean table.
    assert clean.filter(pl.col("id") == stored(config, 6)).height == 1
    assert store.read("unlabeled").filter(pl.col("id") == stored(config, 6)).height == 0
    assert_same_as_full(config)


def test_a_modified_old_file_rebuilds_in_full_with_a_notice(tmp_path):
    config = folder_site(tmp_path)
    a = tmp_path / "raw" / "a.csv"
    prepare(config)
    (tmp_path / "raw" / "b.csv").write_text(HEADER + "7,60,110.0,1\n", encoding="utf-8")
    assert prepare(config).incremental
    a.write_text(HEADER + OLD.replace("1,34,90.5,0", "1,35,90.5,0") + "13,30,100,0\n")

    result = prepare(config)

    assert not result.incremental
    assert result.notice == f"raw file {a} changed since clean version 1: full rebuild"
    assert result.clean.lineage["mode"] == "full"
    assert (
        SiteStore(config.store_dir)
        .read("clean")
        .filter(pl.col("id") == stored(config, 1))["age"][0]
        == 35
    )
    assert_same_as_full(config)


def test_a_deleted_old_file_and_row_dependent_cleaning_rebuild_in_full(tmp_path):
    config = folder_site(tmp_path)
    prepare(config)
    b = tmp_path / "raw" / "b.csv"
    b.write_text(HEADER + "7,60,110.0,1\n", encoding="utf-8")
    prepare(config)
    b.unlink()
    append(tmp_path / "raw" / "a.csv", "14,30,100,0\n")

    result = prepare(config)

    assert result.notice == f"raw file {b} was deleted since clean version 1: full rebuild"
    assert_same_as_full(config)

    # Median imputation makes old rows depend on new ones: never incremental.
    median = folder_site(tmp_path / "median", impute="median")
    prepare(median)
    append(tmp_path / "median" / "raw" / "a.csv", "15,99,100,0\n")
    result = prepare(median)
    assert not result.incremental
    assert result.notice == "cleaning.impute = 'median' makes rows depend on all rows: full rebuild"
    assert_same_as_full(median)


def test_a_file_that_ended_mid_row_rebuilds_in_full(tmp_path):
    config = folder_site(tmp_path)
    a = tmp_path / "raw" / "a.csv"
    a.write_text(HEADER + OLD + "20,30,100,0", encoding="utf-8")  # no line break yet
    prepare(config)
    append(a, "1\n21,30,100,0\n")  # the last row was '20,30,100,0' and is now '...01'

    result = prepare(config)

    assert result.notice == f"raw file {a} changed since clean version 0: full rebuild"
    assert_same_as_full(config)


def test_keep_raw_files_copies_only_the_added_bytes(tmp_path):
    config = without_raw_table(folder_site(tmp_path), ids=False)  # copies: no id column
    a = tmp_path / "raw" / "a.csv"
    prepare(config)
    old_size = a.stat().st_size
    append(a, "16,30,100,0\n")

    result = prepare(config)

    record = json.loads(result.clean.lineage["raw_files"])[str(a)]
    assert (record["from_byte"], record["to_byte"]) == (old_size, a.stat().st_size)
    assert (config.store_dir / record["copy"]).read_bytes() == b"16,30,100,0\n"
    assert SiteStore(config.store_dir).latest("raw") is None
    assert_same_as_full(config)


@pytest.mark.parametrize("carried_out", [True, False])
def test_an_erased_subject_of_an_old_file_does_not_come_back(tmp_path, carried_out):
    config = load_site_config(write_subject_site(tmp_path, 0, rows=40))
    raw = next(config.raw_location.iterdir())
    prepare(config)
    erased = subject_id(0, 3)
    request_erasure(config, [erased])
    if carried_out:
        retain(config)
    # New rows: the erased subject again, and a new visit of subject 5 (whose old row
    # is read again to dedupe with it).
    old_line = raw.read_text(encoding="utf-8").splitlines()[4]
    assert old_line.startswith(erased + ",")
    visit = raw.read_text(encoding="utf-8").splitlines()[6].replace("2026-", "2027-")
    append(raw, f"{old_line.replace('2026-', '2028-')}\n{visit}\n")

    result = prepare(config)

    assert result.incremental == carried_out  # a pending request: a full rebuild
    if carried_out:
        assert result.clean.lineage["replaced"] == "1"  # subject 5's old row, re-deduped
    else:
        assert result.notice.startswith("erasure requested since clean version 0")
    clean = SiteStore(config.store_dir).read("clean")
    assert erased not in clean.get_column("patient").to_list()
    assert clean.filter(pl.col("patient") == stored(config, subject_id(0, 5))).height == 2
    assert_same_as_full(config)
    if carried_out:
        assert store_holds(config.store_dir, erased) == []


def test_rows_past_the_retention_age_stay_out_of_incremental_versions(tmp_path):
    config = load_site_config(
        write_subject_site(tmp_path, 0, rows=30, old_rows=5, retention="max_age_days = 365")
    )
    raw = next(config.raw_location.iterdir())
    prepare(config)
    lines = raw.read_text(encoding="utf-8").splitlines()
    expired = lines[1].replace(subject_id(0, 0), "S0P90000")  # seen in 2010
    append(raw, f"{expired}\n{lines[10].replace(subject_id(0, 9), 'S0P90001')}\n")

    result = prepare(config)

    assert result.incremental and result.clean.lineage["replaced"] == "0"
    # Rows only added: the gate is decided from counts, before the commit that records it.
    assert result.clean.lineage["gate"] == "pass" and result.gate_passed
    patients = SiteStore(config.store_dir).read("clean").get_column("patient").to_list()
    assert stored(config, "S0P90001") in patients and stored(config, "S0P90000") not in patients
    assert_same_as_full(config)


def test_the_cli_says_when_it_added_only_new_input_and_why_it_rebuilt(tmp_path, cli):
    config = folder_site(tmp_path)
    site = tmp_path / "site.toml"
    assert cli("fedlife-site", "prepare", "-c", site).returncode == 0
    append(tmp_path / "raw" / "a.csv", "17,30,100,0\n")

    grown = cli("fedlife-site", "prepare", "-c", site)

    assert grown.returncode == 0, grown.stderr
    assert "incremental: only the new input was read and added" in grown.stdout.splitlines()
    (tmp_path / "raw" / "a.csv").write_text(HEADER + "1,34,90.5,0\n", encoding="utf-8")
    rebuilt = cli("fedlife-site", "prepare", "-c", site)
    assert rebuilt.returncode == 0, rebuilt.stderr
    notice = f"raw file {config.raw_location / 'a.csv'} changed since clean version 1: full rebuild"
    assert notice in rebuilt.stdout.splitlines()


def test_old_rows_that_expired_since_the_last_version_go_in_the_same_commit(tmp_path, monkeypatch):
    config = load_site_config(
        write_subject_site(tmp_path, 0, rows=30, retention="max_age_days = 365")
    )
    raw = next(config.raw_location.iterdir())
    prepare(config)
    assert SiteStore(config.store_dir).read("clean").height == 30
    # Two years on (rows were seen in 2026), one new row arrives.
    real = retain_module.datetime

    class Later(real):
        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + timedelta(days=730)

    monkeypatch.setattr(retain_module, "datetime", Later)
    line = raw.read_text(encoding="utf-8").splitlines()[1]
    append(raw, line.replace(subject_id(0, 0), "S0P90002").replace("2026-", "2028-") + "\n")

    result = prepare(config)

    assert result.incremental and result.clean.lineage["replaced"] == "30"
    patients = SiteStore(config.store_dir).read("clean").get_column("patient").to_list()
    assert patients == [stored(config, "S0P90002")]
    assert_same_as_full(config)


@pytest.mark.parametrize("dedupe", ["true", "false"])
def test_a_site_without_an_id_column_dedupes_new_rows_against_old_ones(tmp_path, dedupe):
    (tmp_path / "raw").mkdir()
    a = tmp_path / "raw" / "a.csv"
    a.write_text("age,glucose,outcome\n34,90.5,0\n,120.0,1\n50,?,0\n50,?,0\n", encoding="utf-8")
    toml = SITE_TOML.format(raw="raw", impute="center")
    toml = toml.replace('[schema.columns.id]\ntype = "int"\nrole = "id"\n', "")
    toml = toml.replace("[cleaning]\n", f"[cleaning]\ndedupe = {dedupe}\n")
    (tmp_path / "site.toml").write_text(toml, encoding="utf-8")
    config = load_site_config(tmp_path / "site.toml")
    prepare(config)
    # Again an old row, a row missing the dedupe key (age) like an old one, and a new row.
    append(a, "34,90.5,0\n,120.0,1\n61,100.0,1\n")

    result = prepare(config)

    assert result.incremental
    rows = SiteStore(config.store_dir).read("clean").height
    assert rows == (4 if dedupe == "true" else 7)
    assert result.clean.lineage["replaced"] == ("2" if dedupe == "true" else "0")
    assert_same_as_full(config)


def test_a_grown_json_lines_file_adds_its_tail(tmp_path):
    config = folder_site(tmp_path)
    (tmp_path / "raw" / "a.csv").unlink()
    log = tmp_path / "raw" / "feed.jsonl"
    rows = [(1, 34, 90.5, 0), (2, None, 120.0, 1), (3, 50, 99.0, 0)]
    line = '{{"id": {}, "age": {}, "glucose": {}, "outcome": {}}}\n'
    log.write_text("".join(line.format(*(("null" if v is None else v) for v in r)) for r in rows))
    prepare(config)
    append(log, line.format(2, 33, 120.0, 1) + line.format(4, 70, 130.0, 1))

    result = prepare(config)

    assert result.incremental and json.loads(result.clean.lineage["added"])[0]["rows"] == 2
    clean = SiteStore(config.store_dir).read("clean")
    ids = ["1", "2", "2#2", "3", "4"]
    assert sorted(clean.get_column(ROW_ID).to_list()) == sorted(stored(config, i) for i in ids)
    assert_same_as_full(config)


def test_id_dedupe_keeps_the_row_with_the_latest_timestamp_old_or_new(tmp_path):
    path = write_subject_site(tmp_path, 0, rows=20)
    path.write_text(path.read_text().replace("[quality]", '[cleaning]\ndedupe = "id"\n[quality]'))
    config = load_site_config(path)
    raw = next(config.raw_location.iterdir())
    prepare(config)
    lines = raw.read_text(encoding="utf-8").splitlines()
    older = lines[6].replace("2026-", "2025-")  # subject 5, a year before
    newer = lines[7].replace("2026-", "2027-")  # subject 6, a year after
    append(raw, f"{older}\n{newer}\n")

    result = prepare(config)

    assert result.incremental
    clean = SiteStore(config.store_dir).read("clean")
    seen = dict(zip(clean.get_column("patient"), clean.get_column("seen").dt.year(), strict=True))
    assert seen[stored(config, subject_id(0, 5))] == 2026
    assert seen[stored(config, subject_id(0, 6))] == 2027
    assert clean.height == 20
    assert_same_as_full(config)
