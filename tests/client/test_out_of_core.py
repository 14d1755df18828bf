"""The out-of-core prepare (``client.pipeline.streamed``) writes what the in-memory one does.

Each case prepares the same raw files twice, once through each route, and compares
every table row for row (order included), the lineage and the report: the in-memory
route is the one every other prepare test pins.
"""

from __future__ import annotations

import shutil
import subprocess

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from client.pipeline import streamed
from client.pipeline.prepare import prepare
from client.privacy.pseudonyms import pseudonym, row_id_pseudonym, site_key
from client.store import SiteStore
from tests.client.test_validate_clean import COLUMNS, csv, site

ROWS = csv(
    "1,63,NA,1",
    "2,,148.5,0",
    "3,-9,?,1",
    "4,40,-9.0,",  # unlabeled, a marker written as a float
    "5,200,7000,1",  # out of range: clipped, or quarantined (reject)
    "6,40,120,2",  # label not allowed: quarantined
    "7,40,NaN,0",
    "1,63,NA,1",  # an exact duplicate
    "1,64,90,0",  # the same id, other values: id 1#2
    ",50,91,1",  # no id: named by file and line
    ",50,91,1",  # and its duplicate
    "8,30,95,",
    "9,31,,0",
    "10,33,80,1",
)
VARYING = ("prepare_run", "timestamp")


def without_raw_table(config, **sections):
    """``config`` with ``keep_raw_table = false`` and ``sections``' settings replaced."""
    changes = {"site": config.site.model_copy(update={"keep_raw_table": False})}
    for name, settings in sections.items():
        changes[name] = getattr(config, name).model_copy(update=settings)
    return config.model_copy(update=changes)


@pytest.fixture(autouse=True)
def staged_runs(monkeypatch):
    """The out-of-core runs' results (None where it fell back to the in-memory route)."""
    runs = []
    run = streamed.run

    def recorded(*args, **kwargs):
        runs.append(run(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(streamed, "run", recorded)
    return runs


def both(config, runs):
    """Both routes' tables, lineage and report, each on a fresh store."""
    results = {}
    for route in (False, True):
        shutil.rmtree(config.store_dir, ignore_errors=True)
        # One site key for both stores: their ids are the same pseudonyms.
        (config.store_dir / "audit").mkdir(parents=True)
        (config.store_dir / "audit" / "hmac.key").write_bytes(b"k" * 32)
        runs.clear()
        result = prepare(config, out_of_core=route)
        assert (len(runs) == 1 and runs[0] is not None) == route  # the route was taken
        store = SiteStore(config.store_dir)
        tables = {}
        for name in ("clean", "unlabeled", "quarantine", "raw"):
            latest = store.latest(name)
            if latest is not None:
                lineage = {k: v for k, v in latest.lineage.items() if k not in VARYING}
                tables[name] = (store.read(name), lineage)
        results[route] = (result, tables)
    return results[False], results[True]


def assert_same(config, runs):
    (memory, memory_tables), (staged, staged_tables) = both(config, runs)
    assert staged_tables.keys() == memory_tables.keys()
    for name, (frame, lineage) in memory_tables.items():
        assert_frame_equal(staged_tables[name][0], frame)
        assert staged_tables[name][1] == lineage
    assert staged.report == memory.report
    assert staged.gate_reasons == memory.gate_reasons
    return memory


@pytest.mark.parametrize(
    "cleaning",
    [
        {},
        {"outliers": "reject"},
        {"outliers": "none", "impute": "mean"},
        {"impute": "constant", "impute_value": -1},
        {"impute": "center"},
        {"impute": "drop"},
        {"dedupe": False},
    ],
)
def test_out_of_core_tables_equal_in_memory_tables(tmp_path, staged_runs, cleaning):
    config = site(
        tmp_path,
        ROWS,
        schema={"missing": ["NA", "?", "-9"]},
        cleaning=cleaning,
    )
    config = without_raw_table(config)
    assert streamed.supported(config)
    memory = assert_same(config, staged_runs)
    assert memory.report.rows_read == 14
    if cleaning.get("dedupe", True):
        assert memory.report.duplicates_dropped == 2
    clean = SiteStore(config.store_dir).read("clean")
    ids = clean.get_column("_row_id").to_list()
    repeat = row_id_pseudonym(site_key(config.store_dir), "1#2")  # id 1's second row
    assert repeat in ids or not cleaning.get("dedupe", True) or cleaning.get("impute") == "drop"


def test_out_of_core_keeps_the_raw_table(tmp_path, staged_runs):
    config = site(tmp_path, ROWS, schema={"missing": ["NA", "?", "-9"]})
    assert config.site.keep_raw_table  # a site's default
    assert_same(config, staged_runs)
    raw = SiteStore(config.store_dir).read("raw")
    assert raw.height == 14
    stored = pseudonym(site_key(config.store_dir), "4")
    assert raw.row(3) == (stored, "40", "-9.0", None, "data.csv", 5)


def test_out_of_core_without_id_names_rows_by_file_and_line(tmp_path, staged_runs):
    columns = {**COLUMNS, "id": {"type": "category"}}
    config = site(tmp_path, ROWS, columns=columns, schema={"missing": ["NA", "?", "-9"]})
    config = without_raw_table(config)
    assert streamed.supported(config)
    assert_same(config, staged_runs)
    ids = SiteStore(config.store_dir).read("clean").get_column("_row_id").to_list()
    assert ids[0] == "data.csv:2"


def test_out_of_core_of_several_files(tmp_path, staged_runs):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.csv").write_text(csv("1,63,100,1", "2,41,90,7", "3,40,NA,"))
    (folder / "b.csv").write_text(csv("3,50,NA,0", "4,55,80,5", "5,51,81,1", "1,63,100,1"))
    config = site(tmp_path, raw="raw", schema={"missing": ["NA"]})
    config = without_raw_table(config)
    memory = assert_same(config, staged_runs)
    assert memory.report.rejected == {"outcome: value not allowed": 2}


@pytest.mark.parametrize("impute", ["median", "mean"])
def test_out_of_core_statistics_a_column_a_read(tmp_path, staged_runs, monkeypatch, impute):
    """Where the rows are too many for all features in one read (20M rows), each read
    holds a few columns: the same tables and report (here one column a read)."""
    monkeypatch.setattr(streamed, "CELLS_PER_QUERY", 1)
    assert_same(without_raw_table(site(tmp_path, ROWS), cleaning={"impute": impute}), staged_runs)


def test_out_of_core_falls_back_where_not_exact(tmp_path, staged_runs):
    # A value the CSV reader cannot type: the in-memory text route quarantines it.
    config = site(tmp_path, csv("1,63,100,1", "2,x5,90,0", "3,40,95,1"))
    config = without_raw_table(config)
    result = prepare(config, out_of_core=True)
    assert staged_runs == [None]
    assert result.report.rejected == {"age: not int": 1}
    quarantine = SiteStore(config.store_dir).read("quarantine")
    assert quarantine.get_column("age").to_list() == ["x5"]


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ("cleaning", {"impute": "mode"}),
        ("cleaning", {"outliers": "winsorize"}),
        ("cleaning", {"dedupe": "id"}),
        ("quality", {"rules": ["age > 0"]}),
    ],
)
def test_out_of_core_only_where_exact(tmp_path, change, setting):
    config = site(tmp_path, ROWS)
    config = without_raw_table(config, **{change: setting})
    assert not streamed.supported(config)


def test_out_of_core_keeps_no_stage_and_reports_unchanged_input(tmp_path, staged_runs):
    config = site(
        tmp_path, ROWS, schema={"missing": ["NA", "?", "-9"]}, cleaning={"impute": "median"}
    )
    # A stage a killed prepare left behind: its process is gone.
    ended = subprocess.Popen(["true"])  # noqa: S607 - a process that has ended
    ended.wait()
    left = config.store_dir / f".stage-{ended.pid}-abc"
    left.mkdir(parents=True)
    (left / "checked.parquet").write_bytes(b"partial")
    config = without_raw_table(config)
    first = prepare(config, out_of_core=True)
    assert staged_runs[0] is not None
    again = prepare(config, out_of_core=True)
    assert again.unchanged
    assert again.clean.version == first.clean.version
    assert not [p for p in config.store_dir.iterdir() if p.name.startswith(".stage-")]
    clean = SiteStore(config.store_dir).read("clean")
    assert clean.height == first.report.rows_clean
    assert clean.get_column("glucose").null_count() == 0  # imputed
    assert (
        clean.filter(pl.col("_row_id") == pseudonym(site_key(config.store_dir), "5"))
        .get_column("glucose")
        .item()
        == 600.0
    )
