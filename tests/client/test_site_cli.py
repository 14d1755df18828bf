"""``fedlife-site``: prepare, status and budget on a tiny site, and bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest

from client.pipeline.prepare import prepare
from client.privacy.ledger import LedgerEntry, PrivacyLedger
from client.store import SiteStore
from common.config import load_site_config

ROWS = 30
DUPLICATES = 2
BUDGET = 3.0


def site_toml(raw: str = "data.csv", site_extra: str = "", tail: str = "") -> str:
    return f"""
[site]
name = "tiny"
raw = "{raw}"
store = "store"
{site_extra}

[schema.columns.x1]
type = "float"
min = 0.0
max = 10.0

[schema.columns.x2]
type = "float"
min = -5.0
max = 5.0

[schema.columns.y]
type = "int"
role = "label"
values = ["0", "1"]

[privacy]
epsilon_budget = {BUDGET}
{tail}
"""


def csv_text(delimiter: str = ",") -> str:
    """ROWS distinct rows with both labels, then DUPLICATES repeats of the first rows."""
    rng = random.Random(0)
    rows = [
        delimiter.join([f"{rng.uniform(0, 10):.4f}", f"{rng.uniform(-5, 5):.4f}", str(i % 2)])
        for i in range(ROWS)
    ]
    return "\n".join([delimiter.join(["x1", "x2", "y"]), *rows, *rows[:DUPLICATES]]) + "\n"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A fresh site folder: raw/data.csv and site.toml; returns the site.toml."""
    (tmp_path / "data.csv").write_text(csv_text())
    config = tmp_path / "site.toml"
    config.write_text(site_toml())
    return config


@pytest.fixture
def prepared(site: Path) -> Path:
    """The site, prepared in-process: raw and clean are at version 0."""
    result = prepare(load_site_config(site))
    assert result.clean.version == 0 and result.gate_passed
    return site


def test_prepare_prints_the_summary(cli, site):
    result = cli("fedlife-site", "prepare", "-c", site)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for text in ("clean version 0", "duplicates", "clean rows", "quality gate: pass"):
        assert text in result.stdout, result.stdout
    duplicates_row = next(line for line in result.stdout.splitlines() if "duplicates" in line)
    assert str(DUPLICATES) in duplicates_row
    clean = SiteStore(site.parent / "store").latest("clean")
    assert clean is not None and clean.version == 0
    assert clean.lineage["rows"] == str(ROWS)


def test_status_json(cli, prepared):
    result = cli("fedlife-site", "status", "-c", prepared, "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["site"] == "tiny"
    assert status["tables"] == {
        "raw": {"version": 0, "rows": ROWS + DUPLICATES},
        "quarantine": {"version": 0, "rows": 0},
        "clean": {"version": 0, "rows": ROWS},
    }
    assert status["gate"] == "pass"


def test_budget_json_before_and_after_training(cli, site):
    result = cli("fedlife-site", "budget", "-c", site, "--json")
    assert result.returncode == 0, result.stderr
    budget = json.loads(result.stdout)
    assert budget["epsilon_budget"] == BUDGET
    assert budget["epsilon_spent"] == 0
    assert budget["epsilon_remaining"] == BUDGET
    assert budget["history"] == []

    entry = LedgerEntry(
        noise_multiplier=1.5,
        sample_rate=0.1,
        steps=50,
        delta=1e-5,
        run_id="run-1",
        round=1,
        table_version=0,
    )
    PrivacyLedger(site.parent / "store").record(entry)
    result = cli("fedlife-site", "budget", "-c", site, "--json")
    assert result.returncode == 0, result.stderr
    budget = json.loads(result.stdout)
    assert 0 < budget["epsilon_spent"] < BUDGET
    assert budget["epsilon_remaining"] == pytest.approx(BUDGET - budget["epsilon_spent"])
    assert [h["run_id"] for h in budget["history"]] == ["run-1"]


def _parquet_cut_in_half(folder: Path) -> None:
    path = folder / "cut.parquet"
    pl.read_csv(folder / "data.csv").write_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# Each case: files to write into the site folder (name -> text, bytes or a writer),
# the config to pass (a file name) and what the error line must name.
BAD_INPUTS = {
    "unknown key": (
        {"bad.toml": site_toml(site_extra='colour = "blue"')},
        "bad.toml",
        ["bad.toml", "colour", "unknown key"],
    ),
    "bad value": (
        {"bad.toml": site_toml().replace(f"epsilon_budget = {BUDGET}", "epsilon_budget = -1")},
        "bad.toml",
        ["bad.toml", "epsilon_budget"],
    ),
    "missing config": ({}, "nosuch.toml", ["nosuch.toml"]),
    "missing raw file": ({"bad.toml": site_toml(raw="nosuch.csv")}, "bad.toml", ["nosuch.csv"]),
    "empty raw file": (
        {"empty.csv": b"", "bad.toml": site_toml(raw="empty.csv")},
        "bad.toml",
        ["empty.csv"],
    ),
    "header lacks a column": (
        {"short.csv": "x1,y\n1.0,0\n2.0,1\n", "bad.toml": site_toml(raw="short.csv")},
        "bad.toml",
        ["short.csv", "x2"],
    ),
    "not utf-8": (
        {
            "binary.csv": b"x1,x2,y\n" + b"\xff\xfe\x81,\xfe\xff,1\n" * 20,
            "bad.toml": site_toml(raw="binary.csv"),
        },
        "bad.toml",
        ["binary.csv"],
    ),
    "truncated parquet": (
        {"cut.parquet": _parquet_cut_in_half, "bad.toml": site_toml(raw="cut.parquet")},
        "bad.toml",
        ["cut.parquet"],
    ),
    "wrong delimiter": (
        {"semicolons.csv": csv_text(";"), "bad.toml": site_toml(raw="semicolons.csv")},
        "bad.toml",
        ["semicolons.csv"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_changes_no_version(cli, assert_one_line_error, prepared, case):
    folder = prepared.parent
    files, config, needles = BAD_INPUTS[case]
    for name, content in files.items():
        if callable(content):
            content(folder)
        elif isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content)
    store = SiteStore(folder / "store")
    before = {table: store.latest(table) for table in ("raw", "clean")}

    result = cli("fedlife-site", "prepare", "-c", folder / config)

    assert_one_line_error(result, *needles)
    assert {table: store.latest(table) for table in ("raw", "clean")} == before
    assert before["clean"].version == 0
    assert store.read("clean", 0).height == ROWS
    assert store.read("raw", 0).height == ROWS + DUPLICATES
