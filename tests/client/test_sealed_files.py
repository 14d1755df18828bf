"""Sealed queue sheets and reports (client.sealed_files) and ``fedlife-site open``."""

from __future__ import annotations

import io
import stat

import polars as pl
import pytest
from typer.testing import CliRunner

from client.cli import app
from client.labeling.importing import read_labels_file
from client.retention.archive import Archive
from client.retention.retain import archive_dir, archive_key
from client.sealed_files import is_sealed, read_file, sheets, write_sealed
from common.config import load_site_config
from common.errors import SealError
from simulations.data.datasets import breast_cancer
from simulations.data.sites import write_site

SHEET = b"row_id,rank,age,label,annotator\nP17-pseudonym,1,61.5,,\n"


def test_a_sealed_sheet_opens_only_under_its_name_and_its_sites_key(tmp_path):
    store = tmp_path / "store"
    plain = store / "labeling" / "queue-v3.csv"
    plain.parent.mkdir(parents=True)
    plain.write_bytes(b"written before sealing")
    sealed = write_sealed(store, plain, SHEET)
    assert sealed.name == "queue-v3.csv.sealed" and not plain.exists()
    assert (
        is_sealed(sealed)
        and b"P17" not in sealed.read_bytes()
        and b"61.5" not in sealed.read_bytes()
    )
    assert read_file(store, sealed) == SHEET
    assert sheets(store / "labeling", "queue-v*.csv") == [sealed]

    renamed = sealed.with_name("queue-v4.csv.sealed")
    renamed.write_bytes(sealed.read_bytes())
    with pytest.raises(SealError, match="altered, renamed, or sealed by another site"):
        read_file(store, renamed)
    altered = bytearray(sealed.read_bytes())
    altered[-3] ^= 1
    renamed.unlink()
    (store / "labeling" / "queue-v5.csv.sealed").write_bytes(bytes(altered))
    with pytest.raises(SealError):
        read_file(store, store / "labeling" / "queue-v5.csv.sealed")
    with pytest.raises(SealError):  # another site's store has another key
        read_file(tmp_path / "other-store", sealed)
    legacy = store / "reports" / "label_issues.csv"
    legacy.parent.mkdir()
    legacy.write_bytes(b"_row_id\nx\n")
    assert read_file(store, legacy) == b"_row_id\nx\n"  # plain files of before still read


def test_label_import_reads_a_sealed_sheet_and_a_plain_filled_one(tmp_path):
    store = tmp_path / "store"
    sealed = write_sealed(store, store / "labeling" / "queue-v0.csv", SHEET)
    read = read_labels_file(sealed, "diagnosis", store)
    assert read["_row_id"].to_list() == ["P17-pseudonym"] and read["label"].to_list() == [None]
    filled = tmp_path / "queue-v0.csv"  # what the annotator gives back: a plain file
    filled.write_text("row_id,label\nP17-pseudonym,1\n")
    assert read_labels_file(filled, "diagnosis", store)["label"].to_list() == ["1"]


@pytest.fixture
def site(tmp_path):
    dataset = breast_cancer()
    return write_site(tmp_path / "site", 0, dataset.frame[:40], dataset, 3.0, 1e-5)


def invoke(*args):
    result = CliRunner().invoke(app, ["open", *map(str, args)], env={"COLUMNS": "200"})
    return result


def one_line(result, needle):
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], result.stderr


def test_open_prints_text_writes_new_files_and_refuses_in_one_line(site, tmp_path):
    config = load_site_config(site)
    store = config.store_dir
    sheet = write_sealed(store, store / "labeling" / "queue-v0.csv", SHEET)
    shown = invoke(sheet, "-c", site)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.encode() == SHEET

    out = tmp_path / "for-annotator.csv"
    assert invoke(sheet, "-c", site, "--out", out).exit_code == 0
    assert out.read_bytes() == SHEET and stat.S_IMODE(out.stat().st_mode) == 0o600
    out.write_bytes(b"the annotator's answers")
    one_line(invoke(sheet, "-c", site, "--out", out), "already exists")
    assert out.read_bytes() == b"the annotator's answers"  # nothing overwritten

    png = write_sealed(store, store / "reports" / "hist-age.png", b"\x89PNG\r\n\x1a\n\xff\xfe")
    one_line(invoke(png, "-c", site), "pass --out")
    altered = bytearray(sheet.read_bytes())
    altered[len(altered) // 2] ^= 1
    sheet.write_bytes(bytes(altered))
    one_line(invoke(sheet, "-c", site), "altered, renamed, or sealed by another site")
    other = write_site(
        tmp_path / "other", 1, breast_cancer().frame[:40], breast_cancer(), 3.0, 1e-5
    )
    theirs = write_sealed(load_site_config(other).store_dir, tmp_path / "queue-v0.csv", SHEET)
    one_line(invoke(theirs, "-c", site), "sealed by another site")
    one_line(invoke(tmp_path / "nothing.sealed", "-c", site), "no such file")
    one_line(invoke(out, "-c", site), "not a sealed fedlife file")

    archive = Archive(archive_dir(config), key=archive_key(config))
    written = archive.write("clean", pl.DataFrame({"age": [61.5, 70.0]}))
    rows = invoke(written, "-c", site)
    assert rows.exit_code == 0, rows.output
    assert pl.read_csv(io.StringIO(rows.stdout))["age"].to_list() == [61.5, 70.0]
