"""Fixtures shared by the site's tests: the messy CSV a new site starts from, and a
site whose data grew after its first prepare."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from client.pipeline.prepare import prepare
from common.config import load_site_config
from tests.client.test_site_cli import csv_text, site_toml

MESSY_CSV = Path(__file__).resolve().parent.parent / "fixtures" / "messy.csv"


@pytest.fixture
def messy_csv(tmp_path: Path) -> Path:
    """A copy of ``tests/fixtures/messy.csv``: 126 rows of 8 columns, as sites export them.

    ``patient_id`` names 120 patients; 6 rows are whole duplicates of others (ids repeat
    only there). ``alcohol`` has 4 decimal commas (``"12,29"``, ``"13,5"``, ``"11,8"``,
    ``"14,05"``) among dotted decimals. Sentinels: ``proline`` -99999 (2x) and 99999,
    ``age`` -1. Planted outliers: ``magnesium`` 12700 and 1270 (the rest 78..150).
    ``age`` has ints written as floats (``"33.0"``); ``comment`` is free text; ``color``
    a category; ``target`` the 0/1 label.
    """
    path = tmp_path / "messy.csv"
    shutil.copyfile(MESSY_CSV, path)
    return path


@pytest.fixture
def grown_site(tmp_path: Path) -> Path:
    """The site.toml of a site prepared once (clean v0) whose data.csv then gained two rows."""
    (tmp_path / "data.csv").write_text(csv_text())
    config = tmp_path / "site.toml"
    config.write_text(site_toml())
    assert prepare(load_site_config(config)).clean.version == 0
    with (tmp_path / "data.csv").open("a") as handle:
        handle.write("1.0,1.0,1\n2.0,-2.0,0\n")
    return config
