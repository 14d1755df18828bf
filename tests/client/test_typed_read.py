"""The typed read (``validate_files``) gives exactly what validating the text gives.

Without a raw table, ``prepare`` types ints and floats as the CSV is read and reads
only quarantined rows again as text; each case here compares it, row for row, with
``validate(read_raw(...))``, the text route every other validation test pins.
"""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from client.pipeline import pipeline
from client.pipeline.ingest import raw_files, read_raw
from client.pipeline.validate import validate, validate_files
from tests.client.test_validate_clean import COLUMNS, csv, site

DIRTY = csv(
    "1,63,NA,1",
    "2,,148.5,0",
    "3,-9,?,1",
    "4,-9,-9.0,",  # the marker -9 written as a float
    "5,200,7000,1",  # out of range: kept (clip) or quarantined (reject)
    "6,40,120,2",  # label not allowed: quarantined
    "7,40,NaN,0",
    "1,63,NA,1",  # an exact duplicate
)


def both(config):
    reject = config.cleaning.outliers == "reject"
    typed = validate_files(raw_files(config), config.schema, reject_out_of_range=reject)
    text = validate(read_raw(config), config.schema, reject_out_of_range=reject)
    return typed, text


@pytest.mark.parametrize("outliers", ["clip", "reject"])
def test_typed_read_equals_text_validation(tmp_path, outliers):
    config = site(
        tmp_path,
        DIRTY,
        schema={"missing": ["NA", "?", "-9"]},
        cleaning={"outliers": outliers},
    )
    typed, text = both(config)
    assert typed is not None  # the typed route was taken, quarantine and all
    assert_frame_equal(typed.valid, text.valid)
    assert_frame_equal(typed.quarantine, text.quarantine)
    assert typed.rejected == text.rejected
    # The text route rejects 'NaN' as out of range too (NaN compares above any max).
    assert typed.quarantine.height == (3 if outliers == "reject" else 1)
    # '-9' is the marker in an int column, '-9.0' in a float one; 'NaN' is missing.
    assert typed.valid.get_column("age").null_count() == 3
    if outliers == "clip":
        nan = typed.valid.filter(pl.col("id") == 7).get_column("glucose")
        assert nan.to_list() == [None]


def test_typed_read_of_several_files_keeps_file_and_line(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.csv").write_text(csv("1,63,100,1", "2,41,90,7"))
    (folder / "b.csv").write_text(csv("3,50,NA,0", "4,x5,80,1", "5,51,81,1"))
    config = site(tmp_path, raw="raw", schema={"missing": ["NA"]})
    typed, text = both(config)
    # 'x5' cannot be typed by the reader: the text route decides (and quarantines it).
    assert typed is None
    (folder / "b.csv").write_text(csv("3,50,NA,0", "4,55,80,5", "5,51,81,1"))
    typed, text = both(config)
    assert typed is not None
    assert_frame_equal(typed.quarantine, text.quarantine)
    assert typed.quarantine.select("_source", "_line").rows() == [("a.csv", 3), ("b.csv", 3)]
    assert_frame_equal(typed.valid, text.valid)


def test_text_route_where_typed_read_is_not_exact(tmp_path):
    # A numeric column with a marker of its own, or no header: the text route only.
    columns = {**COLUMNS, "age": {**COLUMNS["age"], "missing": ["unknown"]}}
    config = site(tmp_path, csv("1,unknown,100,1"), columns=columns)
    assert validate_files(raw_files(config), config.schema) is None
    config = site(tmp_path, "1,63,100,1\n", schema={"header": False})
    assert validate_files(raw_files(config), config.schema) is None


def test_pipeline_without_raw_table_equals_with_it(tmp_path):
    with_table = site(tmp_path, DIRTY, schema={"missing": ["NA", "?", "-9"]})
    without = with_table.model_copy(
        update={"site": with_table.site.model_copy(update={"keep_raw_table": False})}
    )
    kept, typed = pipeline.run(with_table), pipeline.run(without)
    assert_frame_equal(typed.clean, kept.clean)
    assert_frame_equal(typed.validated.quarantine, kept.validated.quarantine)
    assert typed.report.rows_read == kept.report.rows_read == 8
    assert typed.raw.height == 0 and kept.raw.height == 8
