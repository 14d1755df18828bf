"""``profile``: the data-quality profile of a site's clean data, and its histograms."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from client.cli import app
from client.pipeline.prepare import prepare
from client.pipeline.profile import QUANTILES, profile
from client.sealed_files import read_file
from client.site import Site
from client.store import SiteStore
from common.config import load_site_config
from common.errors import DataError

ROWS = 60
PNG = b"\x89PNG\r\n\x1a\n"

SITE_TOML = """
[site]
name = "profiled"
raw = "data.csv"
store = "store"

[schema.columns.name]
type = "text"
role = "pii"

[schema.columns.record]
type = "int"
role = "id"

[schema.columns.age]
type = "float"
min = 0.0
max = 110.0

[schema.columns.income]
type = "float"
role = "ignore"

[schema.columns.city]
type = "category"

[schema.columns.y]
type = "int"
role = "label"
values = ["0", "1"]
"""


def csv_text() -> str:
    """ROWS rows: ages with gaps and outliers, incomes with gaps, cities with gaps."""
    rng = random.Random(7)
    lines = ["name,record,age,income,city,y"]
    for i in range(ROWS):
        age = "" if i % 9 == 0 else f"{rng.uniform(-5, 120):.2f}"
        income = "NA" if i % 5 == 0 else f"{rng.lognormvariate(10, 1):.1f}"
        city = "" if i % 8 == 0 else rng.choice(["oslo", "lima", "pune", "kyiv", "baku", "rome"])
        lines.append(f"Patient Number{i:03d},{9000 + i},{age},{income},{city},{i % 2}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def site_config(tmp_path: Path) -> Path:
    (tmp_path / "data.csv").write_text(csv_text())
    config = tmp_path / "site.toml"
    config.write_text(SITE_TOML)
    return config


@pytest.fixture
def prepared(site_config: Path) -> Path:
    prepare(load_site_config(site_config))
    return site_config


@pytest.fixture
def found(prepared: Path) -> dict:
    return profile(Site.from_path(prepared))


@pytest.fixture
def clean(prepared: Path):
    """The clean table as the store holds it, read independently of ``profile``."""
    return SiteStore(prepared.parent / "store").read("clean")


def test_table_version_and_rows(found, clean):
    assert found["site"] == "profiled"
    assert found["version"] == 0
    assert found["rows"] == clean.height == ROWS
    # 'name' (role pii) never entered the store: nothing to profile
    assert list(found["columns"]) == ["record", "age", "income", "city", "y"]
    assert "name" not in clean.columns
    assert {c: found["columns"][c]["type"] for c in found["columns"]} == {
        "record": "int",
        "age": "float",
        "income": "float",
        "city": "category",
        "y": "int",
    }


@pytest.mark.parametrize("column", ["age", "income", "y"])
def test_numeric_columns_match_numpy(found, clean, column):
    info = found["columns"][column]
    raw = clean.get_column(column).to_list()
    values = np.array([v for v in raw if v is not None], dtype=float)

    assert info["missing_fraction"] == pytest.approx((len(raw) - values.size) / len(raw))
    assert info["distinct"] == len(set(values.tolist()))
    assert info["min"] == values.min() and info["max"] == values.max()
    assert info["mean"] == pytest.approx(values.mean(), rel=1e-12)
    assert info["std"] == pytest.approx(values.std(), rel=1e-9)  # population std
    expected = np.quantile(values, QUANTILES)
    assert list(info["quantiles"]) == [str(q) for q in QUANTILES]
    assert list(info["quantiles"].values()) == pytest.approx(expected.tolist(), rel=1e-12)


def test_the_data_really_has_gaps_and_spread(found):
    # guards the fixture: the comparisons above would be weak on gapless, flat data
    assert found["columns"]["income"]["missing_fraction"] == pytest.approx(12 / ROWS)
    assert found["columns"]["age"]["max"] == 110.0  # an outlier clipped to its range
    assert found["columns"]["income"]["std"] > 1000


def test_category_column_top_five(found, clean):
    info = found["columns"]["city"]
    raw = clean.get_column("city").to_list()
    counts = Counter(v for v in raw if v is not None)
    expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]

    assert info["missing_fraction"] == pytest.approx(raw.count(None) / len(raw))
    assert info["missing_fraction"] > 0
    assert info["distinct"] == len(counts) == 6
    assert [(t["value"], t["count"]) for t in info["top"]] == expected
    assert "min" not in info and "mean" not in info


@pytest.mark.parametrize("column", ["record"])
def test_pii_and_id_columns_show_no_values(found, clean, column):
    info = found["columns"][column]
    assert set(info) == {"type", "role", "missing_fraction", "distinct"}
    assert info["distinct"] == clean.get_column(column).n_unique() == ROWS
    assert column not in found["histograms"]
    assert not list((Path(found["histograms"]["age"]).parent).glob(f"hist-{column}*"))
    shown = set(leaves(found))
    assert not shown & set(clean.get_column(column).to_list())


def leaves(tree):
    """Every number and string anywhere in a JSON-like tree, keys included."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield key
            yield from leaves(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from leaves(value)
    else:
        yield tree


def test_histograms_are_pngs_in_the_store_reports(found, prepared):
    reports = prepared.parent / "store" / "reports"
    assert set(found["histograms"]) == {"age", "income", "y"}
    for column, path in found["histograms"].items():
        path = Path(path)
        assert path == reports / f"hist-{column}.png.sealed"
        assert not path.read_bytes().startswith(PNG)  # sealed: fedlife-site open shows it
        data = read_file(reports.parent, path)
        assert data.startswith(PNG) and len(data) > 1024


def test_stale_histograms_are_removed(prepared):
    reports = prepared.parent / "store" / "reports"
    reports.mkdir(parents=True)
    (reports / "hist-gone.png").write_bytes(PNG)  # written before sealing
    (reports / "hist-gone2.png.sealed").write_bytes(PNG)
    (reports / "notes.txt").write_text("kept")
    profile(Site.from_path(prepared))
    assert not (reports / "hist-gone.png").exists()
    assert not (reports / "hist-gone2.png.sealed").exists()
    assert (reports / "notes.txt").read_text() == "kept"


def test_no_clean_data_asks_for_prepare(site_config):
    with pytest.raises(DataError, match="run fedlife-site prepare"):
        profile(Site.from_path(site_config))
    result = CliRunner().invoke(app, ["profile", "-c", str(site_config)])
    assert result.exit_code == 2
    assert "run fedlife-site prepare" in result.output
    assert "Traceback" not in result.output


def test_cli_table_names_columns_and_histograms(prepared):
    result = CliRunner().invoke(app, ["profile", "-c", str(prepared)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("age" in line and "float" in line and "110" in line for line in lines)
    id_row = next(line for line in lines if "record" in line and "int" in line)
    assert "hidden" in id_row
    assert f"3 histogram(s) in {prepared.parent / 'store' / 'reports'}" in result.output


def test_cli_json_is_the_profile(cli, prepared, found):
    result = cli("fedlife-site", "profile", "-c", prepared, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == found
