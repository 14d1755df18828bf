"""The UCI heart-disease data of four hospitals, as four real sites: init, then prepare.

The files are read in place (never copied): headerless CSVs of 14 columns with '?'
for missing values, Cleveland's ints written as floats ('63.0'), and zeros that mean
"not measured" (chol in every Switzerland row and 49 VA rows, one VA trestbps).
Skipped where the data set is absent.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from client.cli import app
from client.pipeline.init import infer_schema, render_site_toml
from client.pipeline.pipeline import feature_columns, ingest
from client.pipeline.prepare import prepare
from client.store import SiteStore
from common.config import load_site_config


def _dataset_dir() -> Path | None:
    here = Path(__file__).resolve().parents[2]  # the repository root
    candidates = [
        os.environ.get("FEDLIFE_HEART_DISEASE_DIR"),
        here / "shared" / "datasets" / "uci_heart_disease",
        here.parent / "shared" / "datasets" / "uci_heart_disease",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "processed.cleveland.data").is_file():
            return Path(candidate)
    return None


DATA = _dataset_dir()
if DATA is None:
    pytest.skip(
        "UCI heart-disease data not found (set FEDLIFE_HEART_DISEASE_DIR, or place it in "
        "../shared/datasets/uci_heart_disease)",
        allow_module_level=True,
    )

# The 14 columns in file order, as heart-disease.names lists them (--columns takes this).
COLUMNS = "age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal,num"
UCI = COLUMNS.split(",")
HOSPITALS = ["cleveland", "hungarian", "switzerland", "va"]
HIDDEN_ZEROS = ("chol", "trestbps")  # 0 means "not measured" in these columns


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _markers(path: Path) -> tuple[list[str], dict[str, int], dict[str, int]]:
    """The file's distinct lines, '?' per column and hidden zeros per column (from text)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    distinct = list(dict.fromkeys(lines))
    rows = [line.split(",") for line in distinct]
    assert {len(row) for row in rows} == {len(UCI)}
    question = {c: sum(row[i].strip() == "?" for row in rows) for i, c in enumerate(UCI)}
    zeros = {c: sum(row[UCI.index(c)].strip() == "0" for row in rows) for c in HIDDEN_ZEROS}
    return lines, question, zeros


@pytest.mark.parametrize("hospital", HOSPITALS)
def test_init_and_prepare_a_hospital(hospital, tmp_path):
    path = DATA / f"processed.{hospital}.data"
    before = _sha256(path)
    lines, question, zeros = _markers(path)

    # The operator's command: a site folder whose raw setting points at the file in place.
    result = CliRunner().invoke(
        app,
        ["init", str(tmp_path / "cli"), "--from", str(path), "--columns", COLUMNS],
    )
    assert result.exit_code == 0, result.output
    assert "review the ranges and roles" in result.output
    made = load_site_config(tmp_path / "cli" / "site.toml")
    assert list(made.schema.columns) == UCI
    assert made.schema.header is False and made.schema.delimiter == ","
    assert made.schema.label == "num"
    assert made.raw_location.resolve() == path.resolve()

    # What the operator does next: review the guess, declare the hidden zeros as missing.
    schema = infer_schema(path, names=UCI)
    assert schema["header"] is False and list(schema["columns"]) == UCI
    assert schema["missing"] == (["?"] if any(question.values()) else [])
    for column in UCI:
        seen = schema["columns"][column]["missing"]
        assert seen == (["?"] if question[column] else []), column
    assert schema["columns"]["num"]["role"] == "label"
    assert schema["columns"]["oldpeak"]["type"] == "float"
    assert schema["columns"]["age"]["type"] == "int"  # '63.0' in Cleveland is still an int
    for column in HIDDEN_ZEROS:
        schema["columns"][column]["missing"].append("0")
    schema["columns"]["num"]["role"] = "label"
    site = tmp_path / hospital
    site.mkdir()
    (site / "site.toml").write_text(render_site_toml(hospital, str(path), schema))
    config = load_site_config(site / "site.toml")
    assert config.schema.columns["chol"].missing == ["0"]

    first = prepare(config)
    report = first.report

    # Every line is a row; rows leave only as rejected, duplicates or unlabeled.
    assert report.rows_read == len(lines)
    assert report.rows_rejected == 0, report.rejected
    assert report.duplicates_dropped == len(lines) - len(set(lines))
    assert report.rows_clean == (
        report.rows_read
        - report.rows_rejected
        - report.duplicates_dropped
        - report.unlabeled_dropped
        - report.incomplete_dropped
    )
    store = SiteStore(config.store_dir)
    clean = store.read("clean")
    assert clean.height == report.rows_clean == int(first.clean.lineage["rows"])

    # '?' (and, in chol / trestbps, '0') became null: exactly those, no parse failures.
    typed = ingest(config).unique(subset=UCI, maintain_order=True)
    assert typed.height == len(set(lines))
    for column in UCI:
        expected = question[column] + zeros.get(column, 0)
        assert typed.get_column(column).null_count() == expected, column
    # ... and the features' nulls are left for the federation's center, and counted.
    for column in ("ca", "thal"):
        if question[column]:
            assert report.imputed.get(column, 0) == question[column] > 0, column
    if hospital == "switzerland":
        assert zeros["chol"] == report.rows_clean  # every Swiss chol is a hidden zero
        # No Swiss chol was measured: training fills every one with the federation's
        # center, which the other hospitals' measurements give.
        assert report.imputed["chol"] == clean.height
        assert clean.get_column("chol").null_count() == clean.height
    if hospital == "va":
        assert report.imputed["chol"] == zeros["chol"] + question["chol"] > zeros["chol"] > 0
    observed = [
        c for c in feature_columns(config) if typed.get_column(c).null_count() < typed.height
    ]
    nulls = clean.select(pl.col(observed).null_count()).row(0)
    assert nulls == tuple(report.imputed.get(c, 0) for c in observed)

    # Raw bytes untouched; unchanged input and config make no new version.
    assert _sha256(path) == before
    again = prepare(config)
    assert again.unchanged
    assert again.clean.version == first.clean.version
    assert store.latest("raw").version == 0 and store.latest("clean").version == 0
    assert _sha256(path) == before


def test_a_column_never_measured_stays_null_and_fails_the_gate(tmp_path):
    """Switzerland measured no cholesterol: no value is invented for it, the gate says so."""
    path = DATA / "processed.switzerland.data"
    schema = infer_schema(path, names=UCI)
    assert "only 0 seen" in schema["columns"]["chol"]["note"]
    schema["columns"]["chol"]["missing"].append("0")
    (tmp_path / "site.toml").write_text(render_site_toml("switzerland", str(path), schema))
    result = prepare(load_site_config(tmp_path / "site.toml"))
    clean = SiteStore(tmp_path / "store").read("clean")
    assert clean.get_column("chol").null_count() == clean.height
    assert not result.gate_passed
    assert any(reason.startswith("chol: 100% missing") for reason in result.gate_reasons)
